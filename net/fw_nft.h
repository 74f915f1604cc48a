/* fw_nft.h - the firewall model (fw.h) into an nf_tables batch. Internal to
 * net/: the code that owns berth's tables and their socket calls it. */
#ifndef BERTH_FW_NFT_H
#define BERTH_FW_NFT_H

struct nft_batch;
struct fw_model;

/*
 * Put into b what turns the kernel's state for old into m: set and map
 * elements for containers that came, went or changed labels; the chains of
 * a policy that was added, changed or removed, and of the identities (label
 * sets) whose policies changed. With old NULL everything is put: table inet
 * berth must have been (re)created earlier in the same batch, table bridge
 * berth (the anti-spoofing) is replaced here.
 */
void fw_nft_put(struct nft_batch *b, const struct fw_model *old, const struct fw_model *m);

#endif
