// The virtio-i2c suite (test/shared/i2c.suite.ts) on the native runtime, across the process boundary
// (seccomp on). Fails, not skips, without `npm run setup:native`.
import { native } from '../shared/backends';
import { register } from '../shared/i2c.suite';

register(native);
