/* SPDX-License-Identifier: MIT */
/*
 * Reading the "groups:" key of the config (config.c hands the node over).
 * Private to core.
 */
#pragma once

#include <stddef.h>
#include <yaml.h>

#include "dnsink/common.h"
#include "dnsink/groups.h"

/**
 * Parses list node @p n of @p doc (config file @p path) into @p *out /
 * @p *n_out, owned by the caller (dk_group_confs_free()). Names are checked
 * for form only; dk_groups_build() resolves them. Returns 0 or a negative
 * code with @p diag set to "FILE:LINE: what".
 */
int dk__group_confs_parse(yaml_document_t *doc, yaml_node_t *n, const char *path,
                          struct dk_group_conf **out, size_t *n_out, struct dk_diag *diag);
