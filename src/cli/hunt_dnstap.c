/* SPDX-License-Identifier: MIT */
#include "hunt_reader.h"

void dk__hunt_read_dnstap(struct dk_hunt_file *f, struct dk_hlines *l)
{
	(void)l;
	dk__hunt_file_error(f, "dnstap: not yet");
}
