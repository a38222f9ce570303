// A JS Worker that runs the conformance checks (bundled with the `workerd` condition).
import * as sg from 'streamgate';
import { conformance } from './conformance.mjs';

export default {
  async fetch() {
    return Response.json(await conformance(sg));
  },
};
