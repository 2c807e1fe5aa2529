"""A duration as the kernel selftests print it ("%ld.%.9lds": seconds, a
dot, nanoseconds), from the two numbers a regex took out of it."""


def seconds(whole, nanoseconds):
    return int(whole) + int(nanoseconds.ljust(9, "0")[:9]) / 1e9
