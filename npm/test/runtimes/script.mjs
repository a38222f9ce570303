// Deno and Bun run this from a project with the packed package installed.
import * as sg from 'streamgate';
import * as hmac from 'streamgate/hmac';
import { conformance, hmacConformance } from './conformance.mjs';

console.log(JSON.stringify({ ...(await conformance(sg)), hmac: hmacConformance(sg, hmac) }));
