// The virtio-i2c suite (test/shared/i2c.suite.ts) with packed rings negotiated (VIRTIO_F_RING_PACKED) on
// the simulator; test/native/shared-i2c-packed.test.ts runs it on the native runtime.
import { simPacked } from '../shared/backends';
import { register } from '../shared/i2c.suite';

register(simPacked);
