# kvmlab: build, run, test, benchmark. See README.md.
SWIFT ?= swift
RELEASE_BIN := .build/release/kvmlab
DEBUG_BIN := .build/debug/kvmlab

# Warnings are errors for every build the tests run: zero warnings is kept, not hoped for.
STRICT := -Xswiftc -warnings-as-errors

# What --version names: the commit and the toolchain (release builds only,
# so that debug and test builds do not rebuild on every commit).
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
SWIFT_VERSION := $(shell $(SWIFT) --version 2>/dev/null | sed -n 's/.*Swift version \([^ ]*\).*/Swift \1/p' | head -1)
INFO := -Xcc -DKVMLAB_COMMIT='"$(COMMIT)"' -Xcc -DKVMLAB_SWIFT='"$(SWIFT_VERSION)"'

VERSION := $(shell sed -n 's/.*static let release = "\(.*\)"/\1/p' Sources/kvmlab/Kvmlab.swift)
ARCH := $(shell uname -m)
DIST_NAME := kvmlab-$(VERSION)-linux-$(ARCH)
PREFIX ?= /usr/local

.PHONY: all release run test tsan dist install bench pictures guests mutants clean

all:
	$(SWIFT) build

release:
	$(SWIFT) build -c release $(INFO)

# One binary for any x86-64 Linux KVM host: the Swift runtime linked in,
# symbols stripped, next to its sha256 (dist/$(DIST_NAME)).
dist:
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path .build-dist $(INFO)
	mkdir -p dist
	cp .build-dist/release/kvmlab dist/$(DIST_NAME)
	strip dist/$(DIST_NAME)
	cd dist && sha256sum $(DIST_NAME) > $(DIST_NAME).sha256
	@ls -l dist/$(DIST_NAME); cat dist/$(DIST_NAME).sha256

# The dist binary and the shell completions swift-argument-parser writes.
install: dist
	install -D -m 0755 dist/$(DIST_NAME) $(DESTDIR)$(PREFIX)/bin/kvmlab
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	dist/$(DIST_NAME) --generate-completion-script bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/kvmlab
	dist/$(DIST_NAME) --generate-completion-script zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_kvmlab
	dist/$(DIST_NAME) --generate-completion-script fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/kvmlab.fish

# A short demo of what kvmlab does on this host: a test VM, then the
# memslot-deletion jitter measurement (about 20 s).
run: release
	$(RELEASE_BIN) run --vcpus 2
	$(RELEASE_BIN) jitter --svg jitter.svg --events jitter.csv
	@echo "timeline and histograms: jitter.svg; every stall and operation: jitter.csv"

# Unit tests need nothing; integration tests need /dev/kvm and root
# (run `sudo make test`) and skip with a reason where they cannot run.
# Suites run one at a time: several measure process-wide effects (resident
# memory, open fds) or timing-sensitive gaps that a parallel suite would blur.
test: dist
	$(SWIFT) build --build-tests $(STRICT)
	$(SWIFT) test --skip-build --disable-xctest --no-parallel $(STRICT)

# The whole suite under ThreadSanitizer, in its own build folder.
tsan:
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build-tsan $(STRICT)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
		$(SWIFT) test --skip-build --sanitize=thread --scratch-path .build-tsan --disable-xctest --no-parallel $(STRICT)

# Plants each fault in Tests/Mutants/ alone and runs the whole suite against
# it (minutes per mutant; not part of CI). Results: Tests/Mutants/RESULTS.md.
mutants:
	bash Tests/Mutants/run.sh

bench: release
	bash bench/run.sh

# One picture per experiment under docs/, from short runs (needs root and rsvg-convert).
pictures: release
	bash docs/pictures.sh

# Disassembly of every built-in guest, for people reading them.
guests: all
	@for obj in $$(find .build/debug/Guests.build -name '*.S.o' | sort); do \
		echo "== $$(basename $$obj .S.o)"; objdump -d --no-show-raw-insn $$obj | sed -n '/>:$$/,$$p'; done

clean:
	rm -rf .build .build-tsan .build-dist dist
