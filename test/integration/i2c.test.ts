// The virtio-i2c suite (test/shared/i2c.suite.ts) against the rollup bundle inside QuickJS-WASM;
// test/native/shared-i2c.test.ts runs the same suite on the native runtime.
import { sim } from '../shared/backends';
import { register } from '../shared/i2c.suite';

register(sim);
