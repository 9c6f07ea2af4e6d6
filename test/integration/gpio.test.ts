// The virtio-gpio suite (test/shared/gpio.suite.ts) against the rollup bundle inside QuickJS-WASM;
// test/native/shared-gpio.test.ts runs the same suite on the native runtime.
import { sim } from '../shared/backends';
import { register } from '../shared/gpio.suite';

register(sim);
