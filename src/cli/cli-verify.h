/* caback verify's report as text (cli-verify.c), for cmd-verify.c. */
#pragma once

#include <glib.h>

#include <caback/log.h>
#include <caback/verify.h>

G_BEGIN_DECLS

/* -v: one line per key and per certificate. */
void caback_cli_verify_print_details(const CabackVerifyReport *r);

/* "FILE: restorable: ..." with the counts, the comparison and the SHA-256; caller frees. */
char *caback_cli_verify_summary_line(const CabackVerifyReport *r);

/* A warning (shown and recorded in @rec) per certificate expired or expiring soon. */
void caback_cli_verify_warn_expiring(const CabackVerifyReport *r, CabackLogRecord *rec);

G_END_DECLS
