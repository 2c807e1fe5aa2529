# kvmlab: build, run, test, benchmark. See README.md.
SWIFT ?= swift
RELEASE_BIN := .build/release/kvmlab
DEBUG_BIN := .build/debug/kvmlab

# Warnings are errors for every build the tests run: zero warnings is kept, not hoped for.
STRICT := -Xswiftc -warnings-as-errors

.PHONY: all release run test tsan bench guests clean

all:
	$(SWIFT) build

release:
	$(SWIFT) build -c release

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
test:
	$(SWIFT) build --build-tests $(STRICT)
	$(SWIFT) test --skip-build --disable-xctest --no-parallel $(STRICT)

# The whole suite under ThreadSanitizer, in its own build folder.
tsan:
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build-tsan $(STRICT)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
		$(SWIFT) test --skip-build --sanitize=thread --scratch-path .build-tsan --disable-xctest --no-parallel $(STRICT)

bench: release
	bash bench/run.sh

# Disassembly of every built-in guest, for people reading them.
guests: all
	@for obj in $$(find .build/debug/Guests.build -name '*.S.o' | sort); do \
		echo "== $$(basename $$obj .S.o)"; objdump -d --no-show-raw-insn $$obj | sed -n '/>:$$/,$$p'; done

clean:
	rm -rf .build .build-tsan
