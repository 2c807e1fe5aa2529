# kvmlab: build, run, test, benchmark. See README.md.
SWIFT ?= swift
RELEASE_BIN := .build/release/kvmlab
DEBUG_BIN := .build/debug/kvmlab

.PHONY: all release run test bench guests clean

all:
	$(SWIFT) build

release:
	$(SWIFT) build -c release

# A short demo of what kvmlab does on this host.
run: release
	$(RELEASE_BIN) info
	$(RELEASE_BIN) run --vcpus 2
	$(RELEASE_BIN) run --vcpus $$(nproc) --guest memstress --memory 256m --iterations 3
	$(RELEASE_BIN) run --guest fault || test $$? -eq 4

# Unit tests need nothing; integration tests need /dev/kvm and root
# (run `sudo make test`) and skip with a reason where they cannot run.
test:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-xctest

bench: release
	bash bench/run.sh

# Disassembly of every built-in guest, for people reading them.
guests: all
	@for obj in $$(find .build/debug/Guests.build -name '*.S.o' | sort); do \
		echo "== $$(basename $$obj .S.o)"; objdump -d --no-show-raw-insn $$obj | sed -n '/>:$$/,$$p'; done

clean:
	rm -rf .build
