"""Lower quartile, median and upper quartile of a bench's rounds, one way
for every summary (statistics' inclusive method: the rounds are the whole
sample, not draws from a wider one)."""
import statistics


def quartiles(values):
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3
