import assert from "node:assert/strict";
import { test } from "node:test";

import { shade } from "../src/pages/neuron.js";

test("token shade grows with the activation and is clear for specials", () => {
  assert.equal(shade(null, 2), "transparent");
  assert.equal(shade(1, 0), "transparent");
  assert.equal(shade(1, 2), "rgba(244, 162, 97, 0.500)");
  assert.equal(shade(-3, 2), "rgba(244, 162, 97, 0.000)");
});
