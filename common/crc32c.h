/*
 * crc32c.h: CRC32C (Castagnoli), as iSCSI, ext4 and Kafka use it.
 */
#ifndef SLUICE_CRC32C_H
#define SLUICE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue crc (0 to start) over [p, p+n); crc32c(0, "123456789", 9) is
 * 0xE3069283. */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);

#endif
