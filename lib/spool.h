/*
 * The spool: the only code that builds spool paths.
 *
 * Layout under SPOOL_DIR (directories 0700, files 0600):
 *
 *   tmp/ID                       S1 being received (not yet acknowledged)
 *   pending/ID                   S2 committed, never attempted (or requeued);
 *                                   hw-flush.path watches this directory
 *   processing/ID.N.FIRST        S3 claimed by the running hw-flush; N attempts
 *                                   made before this one, the first of them
 *                                   (or this one) started at FIRST (Unix ms)
 *   deferred/ID.N.DUE.FIRST      S4 N attempts failed; due again at DUE (Unix
 *                                   ms); the first started at FIRST
 *   deferred/ID.0.DUE            S4 held without an attempt (no WEBHOOK_URL)
 *   dead/ID  and  dead/ID.reason S5 given up: the item and why (the reason's
 *                                   format is at struct spool_reason)
 *   dead/NAME                    a stray: a file found in pending/ that is
 *                                   not an item, moved out of the way
 *   sources/SOURCE               locks that count each client's sessions
 *                                   (receive/source_limit.c), not items
 *   flush.lock                   held by the running hw-flush
 *   tls-verdict                  a note: the last check of the STARTTLS
 *                                   certificate, for the files as they
 *                                   were (losing it costs one check)
 *   unconfigured                 a note: hw-flush ran without WEBHOOK_URL and
 *                                   said so (it says it once)
 *   strays                       a note: the names in pending/ that are not
 *                                   items and could not be moved, already
 *                                   reported (losing it repeats a report)
 *
 * FIRST is what a dead letter reports as its first attempt. Names without
 * it (processing/ID.N, deferred/ID.N.DUE) are items never attempted, or
 * items from a version that did not record it, which are read as before:
 * their first attempt is unknown (first_ms 0) and their dead letter says
 * so. A requeued item starts anew, without FIRST.
 *
 * Legal moves. A move is one rename(2) followed by an fsync of the
 * directory it lands in (claim skips it, spool_queue.c says why); "gone"
 * is one unlink(2), never fsynced: one that a crash undoes leaves a stale
 * tmp/ item to sweep again, or an item delivered once more.
 *   S1 -> S2   spool_commit    (data fsynced first; the 250 comes after)
 *   S2 -> gone spool_commit    (the fsync of pending/ failed: the name may
 *                               not survive a crash, so the commit is
 *                               undone and the client told 451; see the
 *                               race below)
 *   S1 -> gone spool_abort     (never acknowledged)
 *   S1 -> gone spool_clean_tmp (untouched for HW_TMP_STALE_SEC: the session
 *                               that wrote it is gone; only the holder of
 *                               the run lock sweeps)
 *   S2 -> S3   spool_claim     (the rename is the lock: one claimer wins)
 *   S4 -> S3   spool_claim
 *   S3 -> gone spool_done      (webhook said 2xx)
 *   S3 -> S4   spool_defer
 *   S3 -> S5   spool_bury      (reason written first; a reason without its
 *                               item is an orphan and is ignored)
 *   S3 -> S4   spool_recover   (left by a run that died; due at once)
 *   S5 -> S2   spool_requeue
 *   stray -> dead/NAME  spool_evict_strays (never replaces a file in dead/)
 *
 * The race of the undone commit: between its rename into pending/ and its
 * unlink, a running hw-flush (hw-flush.path wakes it on the new name) may
 * claim the item. The unlink then finds nothing (ENOENT, ignored) and the
 * item is delivered although the client was told 451; the client sends the
 * message again and the webhook gets it twice (under two queue ids), which
 * at-least-once allows. Nothing the client was told is safe is ever
 * removed. A claim after the unlink finds nothing and skips it.
 *
 * Deferred items live apart from pending/ so that the level-triggered
 * PathExistsGlob= of hw-flush.path never stays true because of mail
 * that is waiting for its retry time. State lives in the names, so the
 * item file is written once and a scan is a readdir, not a read per item.
 *
 * An item file is an envelope block, an empty line, then the message
 * exactly as received (with our Received: header first):
 *
 *   hw-spool 1
 *   id 1763729000123456-8f3a0c1b2e4d5a6f
 *   received 1763729000123
 *   remote-ip 192.0.2.1
 *   remote-port 51234
 *   helo mx.example.net
 *   tls TLS1.3 with AES-256-GCM   ("-" without TLS)
 *   sender alice@example.net      (empty value for <>)
 *   rcpt bob@example.com          (one line per recipient)
 *   <empty line>
 *   Received: from ...
 *
 * `sed '1,/^$/d' pending/ID` prints the message. Envelope values never
 * hold CR, LF or NUL (the writer replaces them).
 *
 * The reserve. Headers that hw-receive knows only after the final dot
 * (Authentication-Results:, lib/auth_verdict.h) must come before the
 * sender's bytes, which are already written by then. So an item created
 * with a reserve has, in S1, a padding line and the empty line in front of
 * the sender's bytes:
 *
 *   rcpt bob@example.com
 *   pad --------...--------        the reserve: a fixed number of bytes,
 *   <empty line>                   a complete, valid envelope end
 *   (the sender's message)
 *
 * and, once filled (before the commit, in the same file), the same bytes
 * hold further envelope lines, a shorter padding line, the empty line and
 * the headers, so that the headers end where the sender's bytes begin:
 *
 *   rcpt bob@example.com
 *   auth-spf pass mailfrom alice@example.net
 *   pad --
 *   <empty line>
 *   Received: from ...
 *   Authentication-Results: ...
 *   (the sender's message)
 *
 * Readers need nothing new: "pad" and "auth-*" are keys an older reader
 * skips. Nothing moves: the fill is one pwrite(2) into bytes the item
 * already has, before the fsync of spool_commit.
 *
 * Queue ids: 16 decimal digits of Unix microseconds, '-', 16 hex digits
 * from getrandom(2): sortable by time, unique across hosts, safe as names.
 */
#ifndef HW_SPOOL_H
#define HW_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hw_limits.h"

enum spool_dir {
        SPOOL_TMP,
        SPOOL_PENDING,
        SPOOL_PROCESSING,
        SPOOL_DEFERRED,
        SPOOL_DEAD,
        SPOOL_DIR_COUNT,
};

/* System calls the spool makes that can fail with a full or broken disk.
 * Tests replace them to inject ENOSPC or EIO. Each returns 0 / -1+errno
 * (write: bytes written / -1+errno), like the calls they stand for. Every
 * move of an item or a stray goes through renameat2 (flags 0 or
 * RENAME_NOREPLACE). */
struct spool_io {
        ssize_t (*write)(int fd, const void *buf, size_t len);
        int (*fsync)(int fd);
        int (*renameat2)(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                         unsigned int flags);
};
extern const struct spool_io spool_io_system;

/* Writes all of p through io, retrying short writes and EINTR. 0 or -errno. */
int spool_write_all(const struct spool_io *io, int fd, const void *p, size_t len);

struct spool {
        int root_fd;
        int dir_fd[SPOOL_DIR_COUNT];
        const struct spool_io *io;
};

struct envelope {
        char id[HW_QID_LEN + 1];
        int64_t received_ms;
        char remote_ip[HW_IP_MAX];
        unsigned remote_port;
        char helo[HW_HELO_MAX + 1];
        char tls[HW_TLS_DESC_MAX];         /* empty without TLS */
        char sender[HW_ADDR_MAX + 1];      /* empty for <> */
        char (*rcpt)[HW_ADDR_MAX + 1];
        size_t rcpt_count;
        size_t rcpt_capacity;
};

/* A message being written to tmp/. */
struct spool_item {
        struct spool *spool;
        int fd;
        char id[HW_QID_LEN + 1];
        uint64_t bytes;                    /* message bytes (after the envelope) */
        off_t message_offset;              /* where the message starts in the file */
        off_t reserve_offset;              /* the reserve (spool_create_reserved), */
        size_t reserve_len;                /* 0 without one or once filled */
        int error;                         /* first write error, -errno; sticky */
        size_t buffered;
        char buf[HW_IO_BUFFER];
};

/* "tmp", "pending", ... for messages and logs. */
const char *spool_dir_name(enum spool_dir dir);

/* Opens SPOOL_DIR and its subdirectories, creating missing ones (0700). */
int spool_open(struct spool *s, const char *root);
void spool_close(struct spool *s);

/* Free bytes and inodes for an unprivileged writer in the spool's file
 * system; UINT64_MAX inodes where the file system does not count them. */
int spool_free_space(const struct spool *s, uint64_t *free_bytes, uint64_t *free_inodes);

/* Notes: small files in SPOOL_DIR that only save work, so they are
 * replaced atomically but never fsynced. name is a plain file name.
 * spool_note_read returns the bytes read (NUL-terminated, at most size-1)
 * or -errno; spool_note_write returns 0 or -errno. */
ssize_t spool_note_read(const struct spool *s, const char *name, char *buf, size_t size);
int spool_note_write(const struct spool *s, const char *name, const char *text);
/* 0, also when there was no such note; -errno otherwise. */
int spool_note_remove(const struct spool *s, const char *name);

/* A new queue id (see above). */
int spool_new_id(char id[HW_QID_LEN + 1]);
/* Receipt time of an id in Unix ms, or -1 if the id is malformed. */
int64_t spool_id_time_ms(const char *id);

int envelope_init(struct envelope *env, size_t rcpt_capacity);
int envelope_add_rcpt(struct envelope *env, const char *addr);
void envelope_reset(struct envelope *env);     /* forget sender and recipients */
void envelope_free(struct envelope *env);

/* S1: creates tmp/ID (env->id) and writes the envelope block. */
int spool_create(struct spool *s, const struct envelope *env, struct spool_item *item);
/* S1 with a reserve of reserve bytes (see "The reserve" above) for
 * headers known only after the final dot; at least SPOOL_RESERVE_MIN. */
#define SPOOL_RESERVE_MIN 8
int spool_create_reserved(struct spool *s, const struct envelope *env, struct spool_item *item,
                          size_t reserve);
/* Fills the reserve: envelope_lines (complete "key value\n" lines, may be
 * empty) go into the envelope block and headers right before the sender's
 * bytes, which become part of the message (message_offset and bytes say
 * so). -E2BIG when they do not fit; -EINVAL without a reserve. Call after
 * spool_flush(). */
int spool_fill_reserve(struct spool_item *item, const char *envelope_lines,
                       const char *headers, size_t headers_len);
/* Overwrites len bytes of the message at offset (from message_offset)
 * with as many: hw-receive's only change to the sender's bytes (renaming
 * a forged header, lib/auth_verdict.h). Only bytes already flushed. */
int spool_patch(struct spool_item *item, uint64_t offset, const void *bytes, size_t len);
/* Message bytes, buffered; errors are sticky and reported by commit. */
int spool_write(struct spool_item *item, const void *data, size_t len);
/* A read-only descriptor of the item in tmp/ (for the decision API). */
int spool_item_open_read(const struct spool_item *item);
/* Flushes what is buffered so the whole message is in the file. */
int spool_flush(struct spool_item *item);
/* S1 -> S2, durably: flush, fsync, close, rename, fsync pending/. */
int spool_commit(struct spool_item *item);
/* S1 -> gone. Safe to call after a failed commit. */
void spool_abort(struct spool_item *item);

/* Reads the envelope block of an open item file. On success *body_offset
 * is where the message starts. */
int envelope_read(int fd, struct envelope *env, off_t *body_offset);

/* Queue side (spool_queue.c) -------------------------------------------- */

struct spool_entry {
        char id[HW_QID_LEN + 1];
        enum spool_dir dir;
        unsigned attempts;                 /* attempts already made */
        int64_t due_ms;                    /* deferred: when due; else 0 */
        int64_t first_ms;                  /* when the first attempt started; 0: none or unknown */
        char name[HW_QID_LEN + 64];        /* the file name in dir */
};

/* Parses a file name of dir into e; -EINVAL for names that are not items. */
int spool_entry_parse(enum spool_dir dir, const char *name, struct spool_entry *e);

/* Calls fn for every item in dir (readdir only, no stat or read). */
int spool_scan(struct spool *s, enum spool_dir dir,
               int (*fn)(const struct spool_entry *e, void *userdata), void *userdata);

/* S2/S4 -> S3 for an attempt that starts at attempt_ms (0 for a move that
 * makes none): an item never attempted records it as its first attempt.
 * -ENOENT when another runner claimed it first. On success *claimed
 * describes the item in processing/ and *fd is open on it. */
int spool_claim(struct spool *s, const struct spool_entry *e, int64_t attempt_ms,
                struct spool_entry *claimed, int *fd);
int spool_done(struct spool *s, const struct spool_entry *e);
/* An error may also come after the rename, from the fsync of the target
 * directory: then the item has moved, but a crash may put it back in
 * processing/, from where a later run recovers it. Either way nothing is
 * lost and the caller need not know which. */
/* The item keeps its first attempt's time (e->first_ms). */
int spool_defer(struct spool *s, const struct spool_entry *e, unsigned attempts, int64_t due_ms);
/* Why an item is in dead/. dead/ID.reason holds one "key: value" line per
 * field, in this order; a value never holds CR or LF (each becomes '?'):
 *
 *   status: 406                          last HTTP status; "none" without one
 *   error: HTTP 406                      the last failure in words
 *   attempts: 1                          attempts made
 *   first-attempt: 2026-12-02T08:00:00.000Z   UTC; "unknown" when not known
 *   last-attempt: 2026-12-02T08:00:00.250Z
 *   url: https://hooks.example/in        the webhook, without user information
 *   location: https://elsewhere.example/ only after a 3xx, which is never followed
 *
 * Operators read it with cat; hw-flush --status prints it as it is. */
#define SPOOL_REASON_MAX (HW_URL_MAX + 2048)
struct spool_reason {
        long status;                       /* 0: no response */
        const char *error;
        unsigned attempts;
        int64_t first_ms;                  /* Unix ms; <= 0: unknown */
        int64_t last_ms;
        const char *url;
        const char *location;              /* NULL or "": no line */
};
/* The reason file's text, truncated to len (NUL-terminated). */
void spool_reason_format(const struct spool_reason *why, char *buf, size_t len);
int spool_bury(struct spool *s, const struct spool_entry *e, const struct spool_reason *why);
int spool_recover(struct spool *s, int64_t now_ms);
int spool_requeue(struct spool *s, const char *id);
int spool_clean_tmp(struct spool *s, int64_t now_ms);
/* Moves names in pending/ that are not items to dead/; report() is told of
 * each (error 0, or -errno when it could not be moved). Returns how many. */
int spool_evict_strays(struct spool *s, void (*report)(void *userdata, const char *name, int error),
                       void *userdata);
/* Reads dead/ID.reason into buf (NUL-terminated, truncated to len). */
int spool_dead_reason(struct spool *s, const char *id, char *buf, size_t len);
/* Takes the run lock (flock on SPOOL_DIR/flush.lock); returns its fd, to be
 * closed at the end of the run. Without wait, -EBUSY when it is held. */
int spool_lock(struct spool *s, bool wait);

#endif
