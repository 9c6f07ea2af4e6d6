// The driver-model suite (test/shared/devices.suite.ts) with packed rings negotiated (VIRTIO_F_RING_PACKED)
// on the simulator; test/native/shared-devices-packed.test.ts runs it on the native runtime.
import { simPacked } from '../shared/backends';
import { register } from '../shared/devices.suite';

register(simPacked);
