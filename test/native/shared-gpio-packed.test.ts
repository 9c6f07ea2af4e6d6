// The virtio-gpio suite (test/shared/gpio.suite.ts) with packed rings negotiated, on the native runtime
// across the process boundary. Fails, not skips, without `npm run setup:native`.
import { nativePacked } from '../shared/backends';
import { register } from '../shared/gpio.suite';

register(nativePacked);
