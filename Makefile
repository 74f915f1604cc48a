# berth - one Makefile: build, test, bench, fuzz, run, size, board.
#
#   make                    build/$(ARCH)/berth (static musl, stripped)
#   make ARCH=aarch64       build/aarch64/berth
#   make test               every test; ends with "N passed, N failed[, N skipped]"
#   make run                the daemon in a sandbox (own net + mount namespaces)
#   make board-test BOARD=qemu-x86_64|qemu-aarch64   boot a QEMU board, run its scenario
#   make install            berth, its man pages and bash completion under DESTDIR/PREFIX
#   make bench | fuzz | size | clean | distclean
#   V=1                     show the command lines (the default prints "  CC file")
#
# Local overrides go in config.mak (never edit this file for a local need).
-include config.mak

HOST_ARCH := $(shell uname -m)
ARCH ?= $(HOST_ARCH)
VERSION := 0.1.0

B  := build
D  := $(B)/deps
DS := $(D)/src
DA := $(D)/$(ARCH)
O  := $(B)/$(ARCH)
T  := $(B)/test

# Quiet by default, one short line per step ("  CC runtime/main.c"); V=1
# shows the whole command lines. A recipe line is "@$(call msg,WHAT,FILE)"
# (prints nothing with V=1) followed by "$(Q)command".
V ?= 0
ifeq ($(V),1)
Q :=
msg = :
else
Q := @
msg = printf '  %-6s %s\n' '$(1)' '$(2)'
MAKEFLAGS += --no-print-directory
endif

ifeq ($(filter $(ARCH),x86_64 aarch64),)
$(error ARCH must be x86_64 or aarch64, not '$(ARCH)')
endif

# The product: gcc of the target with musl's specs (this is what musl-gcc does).
MUSL_SPECS := /usr/lib/$(ARCH)-linux-musl/musl-gcc.specs
CC      = $(ARCH)-linux-gnu-gcc -specs $(MUSL_SPECS)
AR      = $(ARCH)-linux-gnu-ar
STRIP   = $(ARCH)-linux-gnu-strip
CFLAGS  = -Os -g
WARN    = -Wall -Wextra -Werror -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral \
	  -Wshadow -Wpointer-arith -Wstrict-prototypes
PROD_CPPFLAGS = -I. -I$(O)/gen -I$(DS)/sqlite -I$(DS)/bearssl/inc -I$(DS)/zlib -I$(DA)/include \
	-isystem $(DA)/kinclude
PROD_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -ffunction-sections -fdata-sections \
	-fno-asynchronous-unwind-tables -fno-unwind-tables
PROD_LDFLAGS = -static -Wl,--gc-sections -Wl,-Map,$(O)/berth.map

# The test flavour: the host compiler, sanitizers, the distribution's -dev packages.
TEST_CC     = cc
TEST_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined -I. -I$(T)/gen
TEST_LIBS   = -lsqlite3 -lbearssl -linih -lz

# Third-party code compiled into the product (DESIGN §2).
SQLITE_DEFS = -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_THREADSAFE=0 -DSQLITE_DQS=0 \
	-DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_OMIT_DEPRECATED -DSQLITE_OMIT_SHARED_CACHE \
	-DSQLITE_OMIT_PROGRESS_CALLBACK -DSQLITE_OMIT_DECLTYPE -DSQLITE_OMIT_TRACE \
	-DSQLITE_OMIT_COMPLETE -DSQLITE_OMIT_TCL_VARIABLE -DSQLITE_OMIT_GET_TABLE \
	-DSQLITE_OMIT_AUTHORIZATION -DSQLITE_OMIT_UTF16 -DSQLITE_OMIT_EXPLAIN \
	-DSQLITE_LIKE_DOESNT_MATCH_BLOBS -DSQLITE_MAX_EXPR_DEPTH=0 -DSQLITE_USE_ALLOCA \
	-DSQLITE_DEFAULT_FOREIGN_KEYS=1 -DSQLITE_DEFAULT_WAL_SYNCHRONOUS=1 -DHAVE_USLEEP=1
DEP_CFLAGS = -Os -w -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables

# Modules (DESIGN §1). lib/ is the leaf every other module may use.
MODULES   := lib store net dns runtime runtime/config runtime/ctr runtime/ctl runtime/cni runtime/image
PROD_SRC  := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
LIB_SRC   := $(filter-out runtime/main.c,$(PROD_SRC))
PROD_OBJ  := $(PROD_SRC:%.c=$(O)/obj/%.o)
TEST_OBJ  := $(LIB_SRC:%.c=$(T)/obj/%.o)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(T)/unit/%)
HELPER_SRC := $(wildcard tests/helpers/*.c)
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=$(T)/helpers/%)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)
BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(T)/bench/%)

DEP_LIBS  := $(DA)/lib/libsqlite3.a $(DA)/lib/libbearssl.a $(DA)/lib/libz.a $(DA)/lib/libinih.a
DEP_READY := $(DA)/.ready

.PHONY: all deps test unit test-build run bench fuzz size board-test clean distclean install docs FORCE
# The man pages and the completion script come from the command and key
# tables through the binary of this machine (berth doc, berth completion):
# built with it here, or through the native build when cross-compiling.
DOC_BIN := $(B)/$(HOST_ARCH)/berth
DOCS    := $(B)/man/berth.8 $(B)/man/berth.ini.5 $(B)/completion/berth
all: $(O)/berth $(if $(filter $(ARCH),$(HOST_ARCH)),$(DOCS))
docs: $(DOCS)

# ---- product ---------------------------------------------------------------

$(O)/berth: $(PROD_OBJ) $(DEP_LIBS)
	@$(call msg,LD,$@)
	$(Q)$(CC) $(PROD_CFLAGS) $(PROD_LDFLAGS) -o $@.unstripped $(PROD_OBJ) $(DEP_LIBS)
	@$(call msg,STRIP,$@)
	$(Q)$(STRIP) -o $@ $@.unstripped
	@echo "built $@ ($$(stat -c %s $@) bytes)"

$(O)/obj/%.o: %.c $(O)/.flags | $(DEP_READY) $(O)/gen/version.h
	@mkdir -p $(@D)
	@$(call msg,CC,$<)
	$(Q)$(CC) $(PROD_CPPFLAGS) $(PROD_CFLAGS) -MMD -MP -c -o $@ $<

# Rebuild everything when the compiler or the flags change (STYLE H15).
$(O)/.flags: FORCE
	@mkdir -p $(@D); echo '$(CC) $(PROD_CPPFLAGS) $(PROD_CFLAGS) $(PROD_LDFLAGS)' | cmp -s - $@ || \
		echo '$(CC) $(PROD_CPPFLAGS) $(PROD_CFLAGS) $(PROD_LDFLAGS)' > $@
$(T)/.flags: FORCE
	@mkdir -p $(@D); echo '$(TEST_CC) $(TEST_CFLAGS)' | cmp -s - $@ || echo '$(TEST_CC) $(TEST_CFLAGS)' > $@

# version.h changes only when the commit does, so a commit rebuilds main.o only.
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
define gen_version
	@mkdir -p $(@D)
	@printf '#define BERTH_VERSION "%s"\n#define BERTH_COMMIT "%s"\n#define BERTH_ARCH "%s"\n#define BERTH_BEARSSL_VERSION "%s"\n' \
		'$(VERSION)' '$(GIT_COMMIT)' '$(1)' "$(2)" > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
endef
$(O)/gen/version.h: FORCE | $(DEP_READY)
	$(call gen_version,$(ARCH),$$(cat $(DS)/bearssl/VERSION))
$(T)/gen/version.h: FORCE
	$(call gen_version,$(HOST_ARCH),$$(dpkg-query -W -f='$${Version}' libbearssl-dev 2>/dev/null | sed 's/[+-].*//'))

# ---- third-party dependencies, fetched once into build/deps ----------------

deps: $(DEP_READY)

$(DEP_READY): $(DEP_LIBS) $(DA)/kinclude/.stamp
	@touch $@

$(DS)/sqlite/.stamp:
	@command -v $(ARCH)-linux-gnu-gcc >/dev/null || { echo "missing $(ARCH)-linux-gnu-gcc: run mk/deps.sh build" >&2; exit 1; }
	@$(call msg,FETCH,sqlite)
	$(Q)mk/thirdparty.sh sqlite $(DS)
	@touch $@
$(DS)/bearssl/.stamp:
	@$(call msg,FETCH,bearssl)
	$(Q)mk/thirdparty.sh bearssl $(DS)
	@touch $@

$(DA)/lib/libsqlite3.a: $(DS)/sqlite/.stamp
	@test -f $(MUSL_SPECS) || { echo "missing $(MUSL_SPECS): run mk/deps.sh build (musl-tools, musl-dev:arm64)" >&2; exit 1; }
	@mkdir -p $(DA)/obj $(@D)
	@$(call msg,CC,$(DS)/sqlite/sqlite3.c)
	$(Q)$(CC) $(DEP_CFLAGS) $(SQLITE_DEFS) -c -o $(DA)/obj/sqlite3.o $(DS)/sqlite/sqlite3.c
	@$(call msg,AR,$@)
	$(Q)rm -f $@; $(AR) rcs $@ $(DA)/obj/sqlite3.o

$(DA)/lib/libbearssl.a: $(DS)/bearssl/.stamp
	@mkdir -p $(DA)/obj/bearssl $(@D)
	@echo "compiling BearSSL for $(ARCH)"
	@cd $(DS)/bearssl/src && find . -name '*.c' | sed 's|^\./||' | \
		xargs -P $$(nproc) -I{} sh -c 'o=$(CURDIR)/$(DA)/obj/bearssl/$$(echo {} | tr / _).o; \
		$(CC) $(DEP_CFLAGS) -I../inc -I. -c -o $$o {}' || { echo "compiling BearSSL failed" >&2; exit 1; }
	@$(call msg,AR,$@)
	$(Q)rm -f $@; $(AR) rcs $@ $(DA)/obj/bearssl/*.o

# zlib (issue 21): image layers arrive as gzip, which is what registries
# serve and `docker save` writes; zstd layers are rare and its decoder would
# cost several times zlib's inflate in the binary. Only the inflate side is
# compiled (berth never compresses): adler32 crc32 inffast inflate inftrees
# zutil, from Debian's source package like SQLite and BearSSL.
ZLIB_OBJ = adler32 crc32 inffast inflate inftrees zutil
$(DS)/zlib/.stamp:
	@$(call msg,FETCH,zlib)
	$(Q)mk/thirdparty.sh zlib $(DS)
	@touch $@

$(DA)/lib/libz.a: $(DS)/zlib/.stamp
	@mkdir -p $(DA)/obj/zlib $(@D)
	@$(call msg,CC,zlib ($(ZLIB_OBJ)))
	@for f in $(ZLIB_OBJ); do \
		$(CC) $(DEP_CFLAGS) -DHAVE_UNISTD_H -DHAVE_STDARG_H -I$(DS)/zlib -c -o $(DA)/obj/zlib/$$f.o \
			$(DS)/zlib/$$f.c || { echo "compiling zlib's $$f.c failed" >&2; exit 1; }; done
	@$(call msg,AR,$@)
	$(Q)rm -f $@; $(AR) rcs $@ $(ZLIB_OBJ:%=$(DA)/obj/zlib/%.o)

$(DA)/lib/libinih.a:
	@mkdir -p $(DA)/include $(@D)
	@$(call msg,FETCH,inih)
	$(Q)mk/thirdparty.sh inih $(ARCH) $(DA)/inih
	$(Q)cp $(DA)/inih/libinih.a $@; cp $(DA)/inih/ini.h $(DA)/include/ini.h

# musl-gcc does not search the kernel's UAPI headers: link them from
# linux-libc-dev (native) or linux-libc-dev-arm64-cross.
$(DA)/kinclude/.stamp:
	@mkdir -p $(@D)
	@if [ "$(ARCH)" = "$(HOST_ARCH)" ]; then k=/usr/include; a=/usr/include/$(ARCH)-linux-gnu/asm; \
	else k=/usr/$(ARCH)-linux-gnu/include; a=$$k/asm; fi; \
	for d in $$k/linux $$k/asm-generic $$a; do test -d $$d || { echo "missing $$d: install linux-libc-dev (mk/deps.sh build)" >&2; exit 1; }; done; \
	ln -sfn $$k/linux $(@D)/linux; ln -sfn $$k/asm-generic $(@D)/asm-generic; ln -sfn $$a $(@D)/asm
	@touch $@

# ---- test flavour ----------------------------------------------------------

$(T)/obj/%.o: %.c $(T)/.flags | $(T)/gen/version.h
	@mkdir -p $(@D)
	@$(call msg,CC,$< (test))
	$(Q)$(TEST_CC) $(TEST_CFLAGS) -MMD -MP -c -o $@ $<

$(T)/libberth.a: $(TEST_OBJ)
	@mkdir -p $(@D); rm -f $@
	@$(call msg,AR,$@)
	$(Q)ar rcs $@ $(TEST_OBJ)

$(T)/berth: $(T)/obj/runtime/main.o $(T)/libberth.a
	@$(call msg,LD,$@)
	$(Q)$(TEST_CC) $(TEST_CFLAGS) -o $@ $^ $(TEST_LIBS)

$(T)/unit/%: tests/unit/%.c tests/unit/t.h $(T)/libberth.a $(T)/.flags
	@mkdir -p $(@D)
	@$(call msg,CCLD,$@)
	$(Q)$(TEST_CC) $(TEST_CFLAGS) -o $@ $< $(T)/libberth.a $(TEST_LIBS)

# benchmarks: optimised, not sanitized, against the same -dev libraries.
BENCH_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -I. -I$(T)/gen
BENCH_OBJ := $(LIB_SRC:%.c=$(B)/bench/obj/%.o)
$(B)/bench/obj/%.o: %.c $(T)/.flags | $(T)/gen/version.h
	@mkdir -p $(@D)
	@$(call msg,CC,$< (bench))
	$(Q)$(TEST_CC) $(BENCH_CFLAGS) -MMD -MP -c -o $@ $<
$(B)/bench/libberth.a: $(BENCH_OBJ)
	@mkdir -p $(@D); rm -f $@
	@$(call msg,AR,$@)
	$(Q)ar rcs $@ $(BENCH_OBJ)
$(T)/bench/%: tests/bench/%.c $(B)/bench/libberth.a
	@mkdir -p $(@D)
	@$(call msg,CCLD,$@)
	$(Q)$(TEST_CC) $(BENCH_CFLAGS) -o $@ $< $(B)/bench/libberth.a $(TEST_LIBS)
# crr, the services benchmark's client and responder: static and without
# libberth, for the responder runs inside busybox containers too
$(T)/bench/crr: tests/bench/crr.c
	@mkdir -p $(@D)
	@$(call msg,CCLD,$@ (static))
	$(Q)$(TEST_CC) $(BENCH_CFLAGS) -static -o $@ $<

# small programs the integration tests drive (fake peers, load generators)
$(T)/helpers/%: tests/helpers/%.c $(T)/libberth.a $(T)/.flags
	@mkdir -p $(@D)
	@$(call msg,CCLD,$@)
	$(Q)$(TEST_CC) $(TEST_CFLAGS) -o $@ $< $(T)/libberth.a $(TEST_LIBS)

test-build: $(T)/berth $(UNIT_BIN) $(HELPER_BIN)

# libFuzzer targets: clang, every module compiled in, sanitizers on.
FUZZ_CC     = clang
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined -I. -I$(T)/gen
FUZZ_SECONDS ?= 30
$(B)/fuzz/%: tests/fuzz/%.c $(LIB_SRC) | $(T)/gen/version.h
	@mkdir -p $(@D)
	@$(call msg,CCLD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(TEST_LIBS)

# make test: install what is missing, build both products and the test
# flavour, then run every test layer (tests/run.sh prints the closing line).
test:
	@mk/deps.sh test
	$(MAKE) -j$$(nproc) ARCH=x86_64
	$(MAKE) -j$$(nproc) ARCH=aarch64
	$(MAKE) -j$$(nproc) test-build
	@# the image tests build rootfs of both architectures inside network
	@# namespaces, where apt-get cannot reach the archive: fetch them now
	@mk/busybox-rootfs.sh aarch64 $(T)/rootfs-aarch64 >/dev/null
	@mk/busybox-rootfs.sh x86_64 $(T)/rootfs-x86_64 >/dev/null
	@tests/run.sh

unit: test-build
	@tests/run.sh unit

bench:
	@mk/deps.sh bench
	$(MAKE) all $(BENCH_BIN) $(T)/berth
	@tests/bench/run.sh

fuzz: $(FUZZ_BIN)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BIN)

# ---- boards (board/) -------------------------------------------------------
# A QEMU board boots the static berth of its architecture from init and runs
# the on-board scenario; build/board/BOARD/console.log keeps the serial console.
BOARD ?= qemu-$(HOST_ARCH)
board-test:
	@test -f board/$(BOARD)/board.conf || { echo "BOARD must be one of: $$(cd board && ls -d qemu-* | tr '\n' ' ')" >&2; exit 2; }
	@mk/deps.sh board
	$(MAKE) -j$$(nproc) ARCH=$$(sed -n 's/^BOARD_ARCH=\([a-z0-9_]*\).*/\1/p' board/$(BOARD)/board.conf)
	@board/board.sh $(BOARD)

# ---- documentation, install -----------------------------------------------

ifneq ($(ARCH),$(HOST_ARCH))
$(DOC_BIN): FORCE
	$(Q)$(MAKE) ARCH=$(HOST_ARCH) $@
endif
$(B)/man/berth.8: $(DOC_BIN)
	@mkdir -p $(@D)
	@$(call msg,GEN,$@)
	$(Q)$(DOC_BIN) doc man8 >$@.tmp && mv $@.tmp $@
$(B)/man/berth.ini.5: $(DOC_BIN)
	@mkdir -p $(@D)
	@$(call msg,GEN,$@)
	$(Q)$(DOC_BIN) doc man5 >$@.tmp && mv $@.tmp $@
$(B)/completion/berth: $(DOC_BIN)
	@mkdir -p $(@D)
	@$(call msg,GEN,$@)
	$(Q)$(DOC_BIN) completion bash >$@.tmp && mv $@.tmp $@

# Where the init scripts look (rootfs/: /usr/sbin/berth). DESTDIR for packages.
PREFIX ?= /usr
install: $(O)/berth $(DOCS)
	install -D -m 755 $(O)/berth $(DESTDIR)$(PREFIX)/sbin/berth
	install -D -m 644 $(B)/man/berth.8 $(DESTDIR)$(PREFIX)/share/man/man8/berth.8
	install -D -m 644 $(B)/man/berth.ini.5 $(DESTDIR)$(PREFIX)/share/man/man5/berth.ini.5
	install -D -m 644 $(B)/completion/berth \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/berth

# ---- run, size, clean ------------------------------------------------------

run:
	@mk/deps.sh build
	$(Q)$(MAKE) all
	@mk/run.sh $(O)/berth

size:
	@for a in x86_64 aarch64; do $(MAKE) -s ARCH=$$a >/dev/null || exit 1; done
	@mk/size.sh build/x86_64 build/aarch64

clean:
	rm -rf $(B)/x86_64 $(B)/aarch64 $(T) $(B)/man $(B)/completion

distclean:
	rm -rf $(B)

FORCE:

-include $(PROD_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(T)/obj/runtime/main.d $(BENCH_OBJ:.o=.d)
