// The virtio-gpio suite (test/shared/gpio.suite.ts) with packed rings negotiated (VIRTIO_F_RING_PACKED) on
// the simulator; test/native/shared-gpio-packed.test.ts runs it on the native runtime.
import { simPacked } from '../shared/backends';
import { register } from '../shared/gpio.suite';

register(simPacked);
