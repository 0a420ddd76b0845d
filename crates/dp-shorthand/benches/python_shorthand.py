"""Times the reference parser (awscli.shorthand.ShorthandParser, plus BackCompatVisitor for the typed variant) on the
inputs of benches/parse.rs: 1, 1,000 and 10,000 items `key=k{i},stringValue=v{i}`, each parsed on its own.

Usage: python3 crates/dp-shorthand/benches/python_shorthand.py
Prints one line per size: items, best time per run over several runs, items per second.
"""
import time

from awscli.shorthand import BackCompatVisitor, ShorthandParser
from botocore.session import get_session


def best_of(fn, runs):
    best = float('inf')
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
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
            t = best_of(fn, runs)
            print(f'python {name:15} {n:>6} items: {t * 1e6:12.1f} us  {n / t:14,.0f} items/s')


main()
