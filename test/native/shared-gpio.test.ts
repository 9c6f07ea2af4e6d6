// The virtio-gpio suite (test/shared/gpio.suite.ts) on the native runtime, across the process boundary
// (seccomp on). Fails, not skips, without `npm run setup:native`.
import { native } from '../shared/backends';
import { register } from '../shared/gpio.suite';

register(native);
