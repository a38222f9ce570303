// Runs the bundled conformance worker in workerd through Miniflare (Node 22), prints its JSON.
import { Miniflare } from 'miniflare';

const [, , scriptPath] = process.argv;
const mf = new Miniflare({
  modules: true,
  scriptPath,
  modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
  compatibilityDate: '2026-07-01',
  cf: false, // a placeholder `request.cf`: never fetch the real one over the network
});
try {
  const response = await mf.dispatchFetch('http://localhost/');
  console.log(await response.text());
} finally {
  await mf.dispose();
}
