# mxlock build. `make` builds build/mxlock; `make test` installs what the
# tests need, builds with ASan and UBSan, and runs every test; `make demo`
# runs the main job on the local test network. `make WOLFSSL=tuned` builds
# build/tuned/mxlock against a wolfSSL built from Debian's source package
# with x86-64 assembly (scripts/wolfssl-tuned.sh) instead.

CC ?= cc
PKGS := libuv wolfssl libcares yaml-0.1
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS)) -lhttp_parser -lsqlite3

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -Iproxy -I. -MMD -MP
OPT_CFLAGS := -O2 -g
SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined

LIB_SRC := $(wildcard proxy/base/*.c) $(wildcard proxy/*.c) \
	$(wildcard conf/*.c) $(wildcard tlsa/*.c) $(wildcard mtasts/*.c)
LIB_SRC := $(filter-out proxy/main.c,$(LIB_SRC))
UNIT_SRC := $(wildcard test/unit/test_*.c)

OBJ := $(LIB_SRC:%.c=build/obj/%.o)
SAN_OBJ := $(LIB_SRC:%.c=build/san/obj/%.o)
UNIT_BIN := $(UNIT_SRC:test/unit/%.c=build/san/%)

CLANG ?= clang-14
FUZZ_SRC := $(wildcard test/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:test/fuzz/%.c=build/fuzz/%)
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Iproxy -I. -g -O1 \
	-fsanitize=fuzzer,address,undefined

.PHONY: all san units test demo bench clean deps fuzz

# debian (the default): Debian's libwolfssl, build/mxlock. tuned: the static
# library that scripts/wolfssl-tuned.sh installs, build/tuned/mxlock.
WOLFSSL ?= debian
ifeq ($(WOLFSSL),tuned)
MAIN_BIN := build/tuned/mxlock
else ifeq ($(WOLFSSL),debian)
MAIN_BIN := build/mxlock
else
$(error WOLFSSL=$(WOLFSSL) is not supported: use debian or tuned)
endif

all: $(MAIN_BIN)

build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(OPT_CFLAGS) $(PKG_CFLAGS) -c $< -o $@

build/san/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SAN_CFLAGS) $(PKG_CFLAGS) -c $< -o $@

build/mxlock: $(OBJ) build/obj/proxy/main.o
	$(CC) $(OPT_CFLAGS) -o $@ $^ $(PKG_LIBS)

build/san/mxlock: $(SAN_OBJ) build/san/obj/proxy/main.o
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(PKG_LIBS)

build/san/test_%: test/unit/test_%.c $(SAN_OBJ)
	$(CC) $(BASE_CFLAGS) $(SAN_CFLAGS) $(PKG_CFLAGS) -o $@ $(filter %.c %.o,$^) $(PKG_LIBS) -lcmocka

san: build/san/mxlock

units: $(UNIT_BIN)

# libFuzzer targets for the parsers of peer and DNS data (clang only).
build/fuzz/fuzz_%: test/fuzz/fuzz_%.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) $(PKG_CFLAGS) -o $@ $< $(LIB_SRC) $(PKG_LIBS) -lpthread

fuzz: $(FUZZ_BIN)

deps:
	./scripts/install-deps.sh

test: deps
	$(MAKE) san units all
	./test/run.sh

demo: deps
	$(MAKE) all
	./scripts/demo.sh

# The benchmark needs its rival relays, OpenSSL headers and the tools that
# build the tuned wolfSSL besides the test packages. It measures mxlock with
# both wolfSSL builds and runs in a network namespace of its own (about
# 10 minutes). Without a tuned build it measures Debian's and says why.
bench:
	./scripts/install-deps.sh --bench
	$(MAKE) WOLFSSL=debian all
	$(MAKE) WOLFSSL=tuned all || echo "bench: the tuned wolfSSL build failed; its paths are skipped" >&2
	./scripts/bench.sh

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(SAN_OBJ:.o=.d) $(UNIT_BIN:=.d)

ifeq ($(WOLFSSL),tuned)
# The script does nothing when the tuned build is current. It runs while
# this file is read, before any goal, so pkg-config below already finds
# the tuned wolfssl.pc; a failure stops make here.
TUNED_PREFIX := $(CURDIR)/build/wolfssl-tuned/prefix
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),all)),)
ifneq ($(shell ./scripts/wolfssl-tuned.sh >&2 && echo ok),ok)
$(error scripts/wolfssl-tuned.sh failed)
endif
endif

# wolfssl from the tuned prefix; libuv, c-ares and libyaml from the system.
# -isystem, as for the headers in /usr/include: -Wshadow would otherwise
# reject local variables named like wolfSSL's typedefs (byte, word32).
TUNED_PKG_CONFIG := PKG_CONFIG_PATH=$(TUNED_PREFIX)/lib/pkgconfig pkg-config
TUNED_CFLAGS = $(patsubst -I%,-isystem %,$(shell $(TUNED_PKG_CONFIG) --cflags $(PKGS)))
TUNED_LIBS = $(shell $(TUNED_PKG_CONFIG) --libs $(PKGS)) -lhttp_parser -lsqlite3 -lm
TUNED_OBJ := $(LIB_SRC:%.c=build/tuned/obj/%.o)
# -MMD leaves -isystem headers out of the .d files, so the script's stamp,
# rewritten on every new wolfSSL build, is their prerequisite instead.
TUNED_STAMP := $(TUNED_PREFIX)/.mxlock-tuned-stamp

build/tuned/obj/%.o: %.c $(TUNED_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(OPT_CFLAGS) $(TUNED_CFLAGS) -c $< -o $@

build/tuned/mxlock: $(TUNED_OBJ) build/tuned/obj/proxy/main.o $(TUNED_STAMP)
	$(CC) $(OPT_CFLAGS) -o $@ $(filter %.o,$^) $(TUNED_LIBS)

# The benchmark's bare wolfSSL loops against the same library.
build/tuned/tlsloop: scripts/bench/tlsloop.c $(TUNED_STAMP)
	$(CC) -std=c11 -O2 -g -Wall -Wextra -o $@ $< \
		$(shell $(TUNED_PKG_CONFIG) --cflags --libs wolfssl) -lm

-include $(TUNED_OBJ:.o=.d)
endif
