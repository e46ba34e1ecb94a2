/* caback list as one call (src/lib/list-run.c): a PKCS#12 file read and inspected in an NSS
 * context without databases (keys are decrypted into session objects of the internal slot only
 * to learn their type, size and key ID, and are gone when the call returns), and the JSON
 * document of what it holds. The front end prints the text. NSS-touching. */
#pragma once

#include <glib.h>

#include <caback/json.h>
#include <caback/p12.h>
#include <caback/restore.h>
#include <caback/secret.h>

G_BEGIN_DECLS

/* What caback_list_run is asked to show. */
typedef struct {
    const char *path;                     /* the PKCS#12 file */
    const CabackSecret *password;         /* the password when already known, else NULL */
    CabackPasswordSource password_source; /* else where it comes from (empty: the empty
                                           * password, then the prompt) */
} CabackListOptions;

/* How caback_list_run talks to its front end; every member may be NULL. */
typedef struct {
    /* Reading the file failed with *@error: the front end may explain it better (a damaged file
     * or a wrong password, from what its log recorded). */
    void (*read_failed)(const char *path, GError **error, gpointer data);
    /* The file's contents, valid only during the call. */
    void (*listed)(const CabackRestorePlan *plan, const CabackP12Info *info, gpointer data);
    gpointer data;
} CabackListHooks;

/* Read options->path (caback_restore_read) inside an NSS context of its own, hand what it holds
 * to hooks->listed, and shut NSS down again: a reference left behind is a failure
 * (CABACK_ERROR_FAILED). Reading failures are caback_restore_read's. */
gboolean caback_list_run(const CabackListOptions *options, const CabackListHooks *hooks,
                         GError **error);

/* The members of caback list --json for what @plan and @info hold: "integrity", "file" (path,
 * MAC, safes, warnings), "certificates", "keys", "certs_only", "crls", written into the object
 * @json has open (a streamed writer hands them over as they are made: a file of many
 * certificates has a large JSON). */
void caback_list_json_members(CabackJson *json, const CabackRestorePlan *plan,
                              const CabackP12Info *info);

/* What is wrong with a bag's friendlyName and what restore does with it, or NULL when nothing
 * is (names.h). Caller frees. */
char *caback_list_name_problem(const CabackP12Attributes *attrs);

/* The bag's localKeyID in lower-case hex, or NULL when it has none. Caller frees. */
char *caback_list_local_key_id(const CabackP12Attributes *attrs);

G_END_DECLS
