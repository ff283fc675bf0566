/* SPDX-License-Identifier: MIT */
/* Stub: being written. */
