// Deno and Bun run this from a project with the packed package installed.
import * as sg from 'streamgate';
import { conformance } from './conformance.mjs';

console.log(JSON.stringify(await conformance(sg)));
