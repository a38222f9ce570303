// A JS Worker that runs the conformance checks (bundled with the `workerd` condition).
import * as sg from 'streamgate';
import * as hmac from 'streamgate/hmac';
import { conformance, hmacConformance } from './conformance.mjs';

export default {
  async fetch() {
    return Response.json({ ...(await conformance(sg)), hmac: hmacConformance(sg, hmac) });
  },
};
