// The virtio-i2c suite (test/shared/i2c.suite.ts) with packed rings negotiated, on the native runtime
// across the process boundary. Fails, not skips, without `npm run setup:native`.
import { nativePacked } from '../shared/backends';
import { register } from '../shared/i2c.suite';

register(nativePacked);
