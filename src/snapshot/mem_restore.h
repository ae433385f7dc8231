/* src/snapshot/mem_restore.h — the interface between helper "snap" (caller) and helper "uffd" (implementer). */
enum snap_mem_backend { SNAP_MEM_FILE, SNAP_MEM_UFFD };
struct snap_mem_restore; /* opaque */
/*
 * Make guest RAM, the live mapping [hva, hva+len) of the sealed guest-RAM memfd `memfd`
 * (wisp's guest memory, src/mem/guest_mem.h), show the contents of a snapshot's memory
 * file: a plain dump of the memfd, memfd offset 0 = file offset 0, sparse (holes = zero pages).
 *  - SNAP_MEM_FILE: `path` is the memory file. 
 *  - SNAP_MEM_UFFD: `path` is the unix socket of a Firecracker-protocol page-fault handler.
 * `need_shared` is true when other processes (IOREQ servers) map the memfd, so the
 * contents must be in the memfd itself (the implementer decides what that means for each
 * backend: e.g. an eager copy, or refusing uffd with servers with a config error).
 * Called after the memfd is mapped and before any vCPU runs. On failure nothing is left
 * registered and *out is NULL; the caller still owns memfd and the mapping.
 */
int snap_mem_restore_start(struct snap_mem_restore **out, enum snap_mem_backend b,
			   const char *path, int memfd, void *hva, size_t len,
			   bool need_shared, struct err *e);
/* Stops serving (unregisters, closes the handler connection). NULL is fine. */
void snap_mem_restore_stop(struct snap_mem_restore *r);
