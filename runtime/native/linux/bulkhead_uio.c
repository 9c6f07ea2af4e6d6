// SPDX-License-Identifier: GPL-2.0
/*
 * bulkhead_uio: the backend partition's side of an ivshmem-doorbell device (PCI 1af4:1110) as a
 * UIO device, so the native firmware (build/bulkhead-fw --uio /dev/uioN) can serve a frontend
 * from inside a VM (docs/qemu.md, "Backend as a VM").
 *
 *   map 0  BAR0, the ivshmem registers (IntrMask, IntrStatus, IVPosition = our peer id, Doorbell)
 *   map 1  BAR2, the shared memory: the window
 *   read() / poll() on /dev/uioN: the interrupt count, bumped on every MSI-X vector 0 interrupt
 *          (another peer rang our vector 0)
 *
 * Why not uio_pci_generic: QEMU's ivshmem-doorbell signals only through MSI-X (it has no INTx
 * pin once it has doorbells), and uio_pci_generic knows INTx only. VFIO would need an IOMMU in
 * the backend VM (Debian's kernel has no VFIO no-IOMMU mode). This is the smallest thing that
 * gives userspace the BARs and the vector: MSI-X vector 0 -> uio_event_notify().
 *
 * The firmware rings a peer by writing (peer << 16) | vector to the Doorbell register through
 * map 0. Nothing here reads the window; the module trusts no peer and has no state besides the
 * interrupt count.
 */
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/uio_driver.h>

#define BH_UIO_NAME "bulkhead-ivshmem-uio"

struct bh_uio {
	struct uio_info info;
	struct pci_dev *pdev;
	int irq;
};

static irqreturn_t bh_uio_irq(int irq, void *data)
{
	struct bh_uio *u = data;

	uio_event_notify(&u->info);
	return IRQ_HANDLED;
}

/* a BAR as a UIO map: page-rounded address, the BAR's offset within its page, whole pages */
static void bh_uio_map(struct uio_mem *m, struct pci_dev *pdev, int bar, const char *name, int memtype)
{
	resource_size_t start = pci_resource_start(pdev, bar);
	resource_size_t len = pci_resource_len(pdev, bar);

	m->name = name;
	m->addr = start & PAGE_MASK;
	m->offs = start & ~PAGE_MASK;
	m->size = PAGE_ALIGN(m->offs + len);
	m->memtype = memtype;
}

static int bh_uio_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct bh_uio *u;
	int err;

	u = devm_kzalloc(&pdev->dev, sizeof(*u), GFP_KERNEL);
	if (!u)
		return -ENOMEM;
	u->pdev = pdev;
	err = pcim_enable_device(pdev);
	if (err)
		return err;
	err = pcim_iomap_regions(pdev, BIT(0) | BIT(2), BH_UIO_NAME);
	if (err) {
		dev_err(&pdev->dev, "cannot claim BAR0/BAR2: %d\n", err);
		return err;
	}
	if (!pci_resource_len(pdev, 0) || !pci_resource_len(pdev, 2)) {
		dev_err(&pdev->dev, "no BAR0 or BAR2: not an ivshmem device with shared memory\n");
		return -ENODEV;
	}
	/* MSI-X messages are bus-master writes */
	pci_set_master(pdev);
	err = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX);
	if (err < 0) {
		dev_err(&pdev->dev, "no MSI-X vector (%d): ivshmem-doorbell raises nothing else\n", err);
		return err;
	}
	u->irq = pci_irq_vector(pdev, 0);

	u->info.name = BH_UIO_NAME;
	u->info.version = "1";
	u->info.irq = UIO_IRQ_CUSTOM;
	bh_uio_map(&u->info.mem[0], pdev, 0, "registers", UIO_MEM_PHYS);
	/* the window is RAM behind the BAR: UIO_MEM_IOVA maps it with the default (cached) type */
	bh_uio_map(&u->info.mem[1], pdev, 2, "window", UIO_MEM_IOVA);

	err = uio_register_device(&pdev->dev, &u->info);
	if (err) {
		dev_err(&pdev->dev, "uio_register_device: %d\n", err);
		goto out_vectors;
	}
	err = request_irq(u->irq, bh_uio_irq, 0, BH_UIO_NAME, u);
	if (err) {
		dev_err(&pdev->dev, "request_irq: %d\n", err);
		goto out_uio;
	}
	pci_set_drvdata(pdev, u);
	dev_info(&pdev->dev, "window %llu KiB, peer id %u, MSI-X vector 0 -> uio\n",
		 (unsigned long long)pci_resource_len(pdev, 2) >> 10,
		 ioread32(pcim_iomap_table(pdev)[0] + 8));
	return 0;

out_uio:
	uio_unregister_device(&u->info);
out_vectors:
	pci_free_irq_vectors(pdev);
	return err;
}

static void bh_uio_remove(struct pci_dev *pdev)
{
	struct bh_uio *u = pci_get_drvdata(pdev);

	free_irq(u->irq, u);
	uio_unregister_device(&u->info);
	pci_free_irq_vectors(pdev);
}

static const struct pci_device_id bh_uio_ids[] = {
	{ PCI_DEVICE(0x1af4, 0x1110) },
	{ 0 }
};
MODULE_DEVICE_TABLE(pci, bh_uio_ids);

static struct pci_driver bh_uio_driver = {
	.name = BH_UIO_NAME,
	.id_table = bh_uio_ids,
	.probe = bh_uio_probe,
	.remove = bh_uio_remove,
};
module_pci_driver(bh_uio_driver);

MODULE_DESCRIPTION("Bulkhead backend partition: ivshmem-doorbell BARs and MSI-X vector 0 as a UIO device");
MODULE_AUTHOR("Bulkhead project");
MODULE_LICENSE("GPL");
