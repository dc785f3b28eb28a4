# mxlock build. `make` builds build/mxlock; `make test` installs what the
# tests need, builds with ASan and UBSan, and runs every test; `make demo`
# runs the main job on the local test network.

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

all: build/mxlock

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

# The benchmark needs two rival relays and OpenSSL headers besides the test
# packages; it runs in a network namespace of its own (about 5 minutes).
bench:
	./scripts/install-deps.sh --bench
	$(MAKE) all
	./scripts/bench.sh

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(SAN_OBJ:.o=.d) $(UNIT_BIN:=.d)
