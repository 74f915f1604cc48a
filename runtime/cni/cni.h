/* cni.h - runtime/cni: berth as a CNI plugin (spec 1.1.0; also answers
 * 0.3.0, 0.3.1, 0.4.0 and 1.0.0). The same binary, started with CNI_COMMAND
 * in its environment, turns the runtime's environment and netconf into one
 * `cni ...` control request to the running daemon (the protocol is in
 * runtime/cni/plugin.c's header comment) and the reply into the result JSON
 * of the netconf's cniVersion: 0.3.x/0.4.0 results give each ip a
 * "version", 1.x results do not.
 *
 * Error codes (the JSON error on stdout, exit status 1). The spec's own:
 *   1  the netconf's cniVersion is missing or not one berth answers, or too
 *      old for the verb (CHECK needs 0.4.0, GC and STATUS 1.1.0)
 *   4  a CNI_* variable the verb needs is missing or malformed, or
 *      CNI_COMMAND is not a verb; the message names the variable
 *   5  stdin could not be read
 *   6  the netconf is not JSON (the parser's message, with the byte) or not
 *      a JSON object
 *   7  a netconf field is wrong (the message names it: "runtimeConfig.
 *      portMappings[0].hostPort: ..."), the request would not fit the control
 *      protocol, or GC was given no cni.dev/valid-attachments
 *  11  the daemon cannot be reached (not running, socket missing): try again
 *  50  STATUS: the daemon cannot be reached, or said the network cannot take
 *      an ADD
 * A daemon's error carries its own code on a details line "cni-code N"
 * (7 unknown network or bad port, 11 no free address, ...), and the plugin
 * passes it on. Decision for an error without that line: the plugin does not
 * guess between 7 and 11 from the wording; it answers the plugin-specific
 * code 100 (the spec leaves 100+ to plugins), with the daemon's message.
 * STATUS is the exception: any failure of STATUS is 50, as the spec asks.
 * CHECK finding the attachment unlike its prevResult (addresses, MAC) is
 * 101; a difference the daemon finds in the kernel comes back as its error
 * (its code, else 100).
 */
#ifndef BERTH_CNI_H
#define BERTH_CNI_H

#include <stdbool.h>

#define CNI_ERR_INCOMPATIBLE_VERSION 1
#define CNI_ERR_INVALID_ENV 4
#define CNI_ERR_IO 5
#define CNI_ERR_DECODE 6
#define CNI_ERR_INVALID_NETCONF 7
#define CNI_ERR_TRY_AGAIN 11
#define CNI_ERR_NOT_AVAILABLE 50
#define CNI_ERR_BERTH 100           /* the daemon refused, without a CNI code */
#define CNI_ERR_CHECK_MISMATCH 101  /* CHECK: the attachment differs from prevResult */

/* Is s a network or container name as the spec has them: an alphanumeric,
 * then alphanumerics, '_', '.' or '-' (the plugin and the daemon check the
 * same)? */
bool cni_name_valid(const char *s);

/* Run the verb named by $CNI_COMMAND with the netconf on stdin; writes the
 * result or the error JSON to stdout. Returns the exit status (0 or 1).
 * main() calls it first of all when CNI_COMMAND is set. */
int cni_plugin_main(void);

#endif
