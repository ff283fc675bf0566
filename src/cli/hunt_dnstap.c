/* SPDX-License-Identifier: MIT */
/*
 * dnstap files for `dnsink hunt`: Frame Streams read with libfstrm (its
 * reader checks the START control frame and the "protobuf:dnstap.Dnstap"
 * content type, and stops at STOP), fed through an fstrm_rdwr whose read
 * method is hunt's decompressing stream, so .gz and .zst dnstap files read
 * like the others. Each data frame is decoded by the core
 * (dk_log_parse_dnstap()); the frame number stands in for a line number.
 */
#include <fstrm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hunt_reader.h"

#define CONTENT_TYPE "protobuf:dnstap.Dnstap"

struct src {
	struct dk_hlines *l;
	bool cut; /**< the stream ended inside a frame */
};

static fstrm_res rd_open(void *obj)
{
	(void)obj;
	return fstrm_res_success;
}

static fstrm_res rd_close(void *obj)
{
	(void)obj;
	return fstrm_res_success;
}

static fstrm_res rd_read(void *obj, void *data, size_t count)
{
	struct src *s = obj;
	ssize_t n = dk_hlines_read(s->l, data, count);

	if (n == (ssize_t)count)
		return fstrm_res_success;
	if (n == 0 && s->l->err == 0)
		return fstrm_res_stop;
	s->cut = true;
	return fstrm_res_failure;
}

void dk__hunt_read_dnstap(struct dk_hunt_file *f, struct dk_hlines *l)
{
	struct src s = {.l = l};
	struct dk_dnstap_state *st = malloc(sizeof(*st));
	struct fstrm_reader_options *ro = fstrm_reader_options_init();
	struct fstrm_rdwr *rw = fstrm_rdwr_init(&s);
	struct fstrm_reader *r = NULL;
	struct dk_logrec *rec = &f->w->rec;
	uint64_t frame = 0;

	if (!st || !ro || !rw) {
		dk__hunt_file_error(f, "out of memory");
		goto out;
	}
	fstrm_rdwr_set_open(rw, rd_open);
	fstrm_rdwr_set_close(rw, rd_close);
	fstrm_rdwr_set_read(rw, rd_read);
	fstrm_reader_options_add_content_type(ro, CONTENT_TYPE, strlen(CONTENT_TYPE));
	fstrm_reader_options_set_max_frame_size(ro, DK_DNSTAP_FRAME_MAX);
	r = fstrm_reader_init(ro, &rw); /* takes rw */
	if (!r || fstrm_reader_open(r) != fstrm_res_success) {
		dk__hunt_bad(f, DK_LOGERR_FRAME, 0);
		fprintf(stderr, "%s: not a Frame Streams file of dnstap messages%s\n", f->path,
		        s.cut ? " (cut short)" : "");
		if (!s.cut)
			f->w->h->status = 2;
		goto out;
	}
	dk_dnstap_state_init(st);
	for (;;) {
		const uint8_t *data;
		size_t len;
		fstrm_res res = fstrm_reader_read(r, &data, &len);

		if (res == fstrm_res_stop)
			break;
		frame++;
		if (res != fstrm_res_success) {
			/* A cut frame, or a length past the maximum: nothing after it can be found.
			 */
			dk__hunt_bad(f, DK_LOGERR_FRAME, frame);
			fprintf(stderr, "%s: frame %llu: %s\n", f->path, (unsigned long long)frame,
			        s.cut ? "cut short" : "malformed Frame Streams frame");
			break;
		}
		int rc = dk_log_parse_dnstap(st, data, len, rec);
		if (rc == 0)
			dk__hunt_record(f, rec, frame);
		else if (rc == DK_LOG_SKIP)
			dk__hunt_skip(f);
		else
			dk__hunt_bad(f, rc, frame);
	}
out:
	fstrm_reader_destroy(&r);
	if (rw)
		fstrm_rdwr_destroy(&rw);
	fstrm_reader_options_destroy(&ro);
	free(st);
}
