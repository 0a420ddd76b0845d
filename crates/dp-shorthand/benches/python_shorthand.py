"""Times the reference parser (awscli.shorthand.ShorthandParser, plus BackCompatVisitor for the typed variant) on the
inputs of benches/parse.rs: 1, 1,000 and 10,000 items `key=k{i},stringValue=v{i}`, each parsed on its own.

Usage: python3 crates/dp-shorthand/benches/python_shorthand.py [--json]
Prints one line per size and variant: the median time of one run over several runs, items per second at the
median, and items per second of the best run. With --json, prints the same figures as one JSON list instead (this is
how `cargo bench -p dp-shorthand --bench parse` reads them to print the ratio).
"""
import json
import statistics
import sys
import time

from awscli.shorthand import BackCompatVisitor, ShorthandParser
from botocore.session import get_session


def timings(fn, runs):
    """The best and the median wall time of `runs` calls."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main():
    as_json = '--json' in sys.argv[1:]
    results = []
    model = get_session().get_service_model('datapipeline')
    fields = model.operation_model('ReportTaskProgress').input_shape.members['fields']
    for n in (1, 1000, 10000):
        items = [f'key=k{i},stringValue=v{i}' for i in range(n)]
        runs = {1: 2000, 1000: 20, 10000: 5}[n]

        def parse():
            return [ShorthandParser().parse(item) for item in items]

        def parse_and_type():
            parsed = parse()
            BackCompatVisitor().visit(parsed, fields)
            return parsed

        for name, fn in (('parse', parse), ('parse_and_type', parse_and_type)):
            best, median = timings(fn, runs)
            results.append({'variant': name, 'items': n, 'runs': runs, 'median_s': median, 'best_s': best})
            if as_json:
                continue
            print(
                f'python {name:15} {n:>6} items: median {median * 1e6:12.1f} us  {n / median:10,.0f} items/s'
                f'  (best run {n / best:10,.0f} items/s)'
            )
    if as_json:
        json.dump(results, sys.stdout)


main()
