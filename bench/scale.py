"""Benchmark: how the data-bound components' time, memory and output grow with the corpus.

Builds aclImdb tarballs of 1, 2, 4, ... times the reviews (each copy of a review a distinct
example: a new review id, the same text, rating and movie, so `eval` still holds out whole
movies), then runs the `default` preset's pipeline on each, one step at a time, each step in a
fresh process: ImdbExampleGen; StatisticsGen with the schema, validator and data gate; Transform;
each Trainer at a fixed number of steps (what grows with the data is their input pipeline and the
classifier's blend and export); the Evaluator on `test`; and the run's HTML report. Per step and
size it records the wall time of each component (from ML Metadata), the peak resident memory of
the step's process tree (the runner and its Beam workers, sampled every 0.2 s) and the size of
the step's outputs; then fits time and memory against size on log-log axes: an exponent of 1 is
linear growth, 0 flat. Writes bench/results/scale.{json,md} (or --name).

Usage: python bench/scale.py [--data PATH] [--sizes 1 2 4] [--steps STEP ...] [--name NAME]
                             [--work-dir DIR] [--tabulate]
"""

import argparse
import dataclasses
import datetime
import io
import json
import os
import pathlib
import subprocess
import sys
import tarfile
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
import psutil

from components.imdb_example_gen import corpus as aclimdb
from pipeline import configs, corpus, report, summary
from pipeline.pipeline import compile_for_local, create_pipeline
from run_benchmark import RESULTS_DIR, machine, write_results  # This folder's.

# Each step runs the pipeline up to and including its last node, upstream nodes from cache, and
# reports the wall time of its data-bound components. The statistics step also runs the schema
# import, the validator and the data gate, which read statistics, not reviews.
STEPS = {
    'ImdbExampleGen': ('ImdbExampleGen', ('ImdbExampleGen',)),
    'StatisticsGen': ('DataGate', ('StatisticsGen',)),
    'Transform': ('Transform', ('Transform',)),
    'PretrainTrainer': ('PretrainTrainer', ('PretrainTrainer',)),
    'ClassifierTrainer': ('ClassifierTrainer', ('ClassifierTrainer',)),
    'Evaluator': ('Evaluator', ('Evaluator',)),
}
REPORT_STEP = 'report'  # pipeline/report.py's HTML report of the run.
# Fixed, few training steps: the Trainers' cost that grows with the data is their input.
TRAINER_STEPS = 20
SAMPLE_SECONDS = 0.2


def scaled_corpus(source: str, copies: int, destination: pathlib.Path) -> pathlib.Path:
  """Writes an aclImdb tarball with each review of `source` `copies` times, under new ids.

  Copy c of review ID in a folder of n reviews gets id ID + c * n, and line ID + c * n of the
  folder's urls file names the same movie. Files other than reviews and urls are left out.
  """
  if destination.exists():
    return destination
  urls = _urls_files(source)
  reviews_per_folder = {folder: len(urls[aclimdb.urls_file(folder)].splitlines())
                        for folders in aclimdb.SET_FOLDERS.values() for folder in folders}
  partial = destination.with_suffix('.partial')
  with tarfile.open(partial, 'w:gz') as scaled:
    # A copy at a time, so that gzip, whose window is 32 KB, compresses the copies as it does
    # new reviews, not as repeats of the one before.
    for copy in range(copies):
      with open(source, 'rb') as raw, tarfile.open(fileobj=raw, mode='r|gz') as tar:
        for member in tar:
          folder = os.path.dirname(member.name.split('/', 1)[-1])
          match = aclimdb.REVIEW_FILE_NAME.match(os.path.basename(member.name))
          if member.isfile() and match and folder in reviews_per_folder:
            review_id, rating = map(int, match.groups())
            review_id += copy * reviews_per_folder[folder]
            _add(scaled, f'aclImdb/{folder}/{review_id}_{rating}.txt', tar.extractfile(member).read())
    for name, text in urls.items():
      _add(scaled, f'aclImdb/{name}', text.encode() * copies)
  partial.rename(destination)
  return destination


def _urls_files(source: str) -> Dict[str, str]:
  """{`train/urls_pos.txt`-like path: its text} of the tarball's review folders."""
  folders = {folder for set_folders in aclimdb.SET_FOLDERS.values() for folder in set_folders}
  wanted = {aclimdb.urls_file(folder) for folder in folders}
  found = {}
  with open(source, 'rb') as raw, tarfile.open(fileobj=raw, mode='r|gz') as tar:
    for member in tar:
      name = member.name.split('/', 1)[-1]
      if member.isfile() and name in wanted:
        text = tar.extractfile(member).read().decode()
        found[name] = text if text.endswith('\n') else text + '\n'
  return found


def _add(tar: tarfile.TarFile, name: str, content: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size = len(content)
  tar.addfile(info, io.BytesIO(content))


def preset() -> configs.Preset:
  """The `default` preset, its Trainers cut to TRAINER_STEPS steps in one epoch."""
  default = configs.PRESETS['default']
  return dataclasses.replace(default, **{
      name: dataclasses.replace(getattr(default, name), steps=TRAINER_STEPS, epochs=1)
      for name in ('pretraining', 'fine_tuning')})


@dataclasses.dataclass(frozen=True)
class SizeRun:
  """Where the pipeline of one corpus size keeps its outputs."""
  work_dir: pathlib.Path
  size: int

  @property
  def name(self) -> str:
    return f'imdb-bert-scale-{self.size}x'

  @property
  def root(self) -> pathlib.Path:
    return self.work_dir / f'{self.size}x'

  def metadata(self):
    from tfx import v1 as tfx
    return tfx.orchestration.metadata.sqlite_metadata_connection_config(str(self.root / 'metadata.db'))

  def run_through(self, corpus_path: pathlib.Path, step: str) -> None:
    """Runs the pipeline's components up to and including node `step`: the step's own
    components always, the others from cache where they ran before."""
    from tfx import v1 as tfx
    pipeline = create_pipeline(
        pipeline_name=self.name, pipeline_root=str(self.root / 'root'), corpus_path=str(corpus_path),
        serving_model_dir=str(self.root / 'serving'), metadata_connection_config=self.metadata(),
        **preset().pipeline_args())
    ids = [component.id for component in pipeline.components]
    kept = pipeline.components[:ids.index(STEPS[step][0]) + 1]
    for component in kept:
      for downstream in list(component.downstream_nodes):
        if downstream not in kept:
          component.remove_downstream_node(downstream)
    pipeline.components = kept
    ir = compile_for_local(pipeline)
    for node in ir.nodes:  # The step's own components run again on a rerun of the benchmark.
      if node.pipeline_node.node_info.id in STEPS[step][1]:
        node.pipeline_node.execution_options.caching_options.enable_cache = False
    tfx.orchestration.LocalDagRunner().run_with_ir(ir)


def run_step(size_run: SizeRun, corpus_path: pathlib.Path, step: str) -> Dict[str, object]:
  """Runs one step in a fresh process; its components' seconds, peak memory and output size."""
  command = [sys.executable, __file__, '--step', step, '--size', str(size_run.size),
             '--work-dir', str(size_run.work_dir), '--data', str(corpus_path)]
  log = size_run.root / f'{step}.log'
  log.parent.mkdir(parents=True, exist_ok=True)
  start = time.perf_counter()
  with open(log, 'wb') as log_file:
    process = psutil.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    peak = runner_peak = 0
    while process.poll() is None:
      runner, tree = _tree_rss(process)
      peak, runner_peak = max(peak, tree), max(runner_peak, runner)
      time.sleep(SAMPLE_SECONDS)
  if process.returncode:
    raise RuntimeError(f'step {step} at {size_run.size}x failed: see {log}')
  result = {'step': step, 'size': size_run.size, 'process_seconds': time.perf_counter() - start,
            'peak_rss_mb': peak / 2**20, 'runner_peak_rss_mb': runner_peak / 2**20}
  if step == REPORT_STEP:
    result['seconds'] = {REPORT_STEP: result['process_seconds']}
    result['output_mb'] = _megabytes([size_run.root / 'report'])
    return result
  run = summary.summarize(size_run.metadata(), size_run.name)
  executed = {component.component_id: component for component in run.components}
  result['seconds'] = {name: executed[name].seconds for name in STEPS[step][1]}
  result['states'] = {name: executed[name].state for name in STEPS[step][1]}
  result['output_mb'] = _megabytes([pathlib.Path(uri) for name in STEPS[step][1]
                                    for uri in run.outputs.get(name, {}).values()])
  return result


def _tree_rss(process: psutil.Process) -> Tuple[int, int]:
  """Resident bytes of a process, and of it with all its descendants (Beam's workers)."""
  try:
    processes = [process] + process.children(recursive=True)
  except psutil.NoSuchProcess:
    return 0, 0
  resident = []
  for member in processes:
    try:
      resident.append(member.memory_info().rss)
    except psutil.NoSuchProcess:  # Exited since listed.
      resident.append(0)
  return resident[0], sum(resident)


def _megabytes(paths: Sequence[pathlib.Path]) -> float:
  return sum(file.stat().st_size for path in paths if path.exists()
             for file in ([path] if path.is_file() else path.rglob('*')) if file.is_file()) / 2**20


def growth(sizes: Sequence[int], values: Sequence[float]) -> float:
  """The exponent b of the least-squares fit values = a * sizes**b (log-log slope)."""
  return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def fits(results: List[Dict[str, object]]) -> Dict[str, Dict[str, float]]:
  """Per step: how its time and peak memory grow with the corpus.

  `*_exponent` is the log-log slope over all sizes; `*_top_exponent` the slope between the two
  largest, nearer the growth at scale when a fixed start-up cost weighs on the smallest;
  `seconds_per_1x` and `mb_per_1x` the slopes of straight-line fits: what each further copy
  of aclImdb adds.
  """
  by_step = {}
  for result in results:
    by_step.setdefault(result['step'], []).append(result)
  fitted = {}
  for step, entries in by_step.items():
    entries = sorted(entries, key=lambda entry: entry['size'])
    if len(entries) < 2:
      continue
    sizes = [entry['size'] for entry in entries]
    seconds = [sum(entry['seconds'].values()) for entry in entries]
    memory = [entry['peak_rss_mb'] for entry in entries]
    fitted[step] = {
        'time_exponent': growth(sizes, seconds), 'time_top_exponent': growth(sizes[-2:], seconds[-2:]),
        'seconds_per_1x': float(np.polyfit(sizes, seconds, 1)[0]),
        'memory_exponent': growth(sizes, memory), 'memory_top_exponent': growth(sizes[-2:], memory[-2:]),
        'mb_per_1x': float(np.polyfit(sizes, memory, 1)[0])}
  return fitted


def markdown(result: dict) -> str:
  sizes = result['sizes']
  rows = {(entry['step'], entry['size']): entry for entry in result['steps']}
  steps = [step for step in (*STEPS, REPORT_STEP) if any((step, size) in rows for size in sizes)]

  def cells(step, value):
    return ' | '.join('-' if (step, size) not in rows else value(rows[step, size]) for size in sizes)

  lines = [
      f"# Cost against corpus size: {', '.join(f'{size}x' for size in sizes)} of aclImdb",
      '',
      f"{result['machine']['cores']} cores, {result['machine']['cpu']}; {result['date']}. "
      f"`default` preset, Trainers at {result['trainer_steps']} steps. Memory: peak resident of the "
      "step's process tree (runner and Beam workers; the runner process alone in brackets). "
      'Exponents: log-log slopes over all sizes, and between the two largest (in brackets); 1 is '
      'linear, 0 flat. Per 1x: the slope of a straight line through the points, what each further '
      'copy of aclImdb adds.',
      '',
      '| component | ' + ' | '.join(f'{size}x s' for size in sizes)
      + ' | time exponent | s per 1x | ' + ' | '.join(f'{size}x MB' for size in sizes)
      + ' | memory exponent | MB per 1x | ' + ' | '.join(f'{size}x output MB' for size in sizes) + ' |',
      '| --- ' * (3 * len(sizes) + 5) + '|',
  ]
  for step in steps:
    fit = result['fits'].get(step)
    time_fit = memory_fit = '- | -'
    if fit:
      time_fit = (f"{fit['time_exponent']:.2f} ({fit['time_top_exponent']:.2f}) | "
                  f"{fit['seconds_per_1x']:,.1f}")
      memory_fit = (f"{fit['memory_exponent']:.2f} ({fit['memory_top_exponent']:.2f}) | "
                    f"{fit['mb_per_1x']:,.0f}")
    name = ', '.join(next(entry for key, entry in rows.items() if key[0] == step)['seconds'])
    lines.append(
        f'| {name} | ' + cells(step, lambda entry: f"{sum(entry['seconds'].values()):,.1f}")
        + f' | {time_fit} | ' + cells(step, _memory_cell)
        + f' | {memory_fit} | ' + cells(step, lambda entry: f"{entry['output_mb']:,.0f}") + ' |')
  tarballs = ', '.join(f'{size}x {mb:,.0f} MB' for size, mb in result['corpus_mb'].items())
  lines += ['', f'Corpus tarballs: {tarballs}.', '']
  return '\n'.join(lines)


def _memory_cell(entry: dict) -> str:
  """Peak memory of the step's process tree, and of its runner process where measured."""
  runner = entry.get('runner_peak_rss_mb')
  return f"{entry['peak_rss_mb']:,.0f}" + (f' ({runner:,.0f})' if runner else '')


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--data', help=f'aclImdb .tar.gz (default: ${corpus.CORPUS_ENV})')
  parser.add_argument('--sizes', type=int, nargs='+', default=[1, 2, 4],
                      help='Corpus sizes, in copies of aclImdb')
  parser.add_argument('--work-dir', type=pathlib.Path,
                      default=pathlib.Path(__file__).parent / 'tmp' / 'scale',
                      help='Scaled corpora and pipeline outputs (default: bench/tmp/scale)')
  parser.add_argument('--name', default='scale', help='Of the results files, bench/results/NAME.*')
  parser.add_argument('--steps', nargs='+', choices=(*STEPS, REPORT_STEP),
                      default=[*STEPS, REPORT_STEP], help='Measure only these steps (default: all)')
  parser.add_argument('--tabulate', action='store_true',
                      help='Only write the table again from bench/results/NAME.json')
  parser.add_argument('--step', choices=(*STEPS, REPORT_STEP), help=argparse.SUPPRESS)
  parser.add_argument('--size', type=int, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.step:  # One step, in the fresh process the parent started.
    size_run = SizeRun(args.work_dir, args.size)
    if args.step == REPORT_STEP:
      report.write_report(size_run.metadata(), size_run.name, str(size_run.root / 'report'))
    else:
      size_run.run_through(pathlib.Path(args.data), args.step)
    return 0

  if args.tabulate:
    result = json.loads((RESULTS_DIR / f'{args.name}.json').read_text())
    result = {**result, 'fits': fits(result['steps'])}
    write_results(args.name, result, markdown(result))
    return 0
  source = corpus.resolve_corpus(args.data)
  if not aclimdb.is_tarball(source):
    raise SystemExit(f'error: {source}: scale.py copies reviews from the aclImdb .tar.gz')
  args.work_dir.mkdir(parents=True, exist_ok=True)
  results, corpus_mb = [], {}
  for size in sorted(args.sizes):
    corpus_path = scaled_corpus(source, size, args.work_dir / f'aclImdb-{size}x.tar.gz')
    corpus_mb[size] = corpus_path.stat().st_size / 2**20
    for step in (step for step in (*STEPS, REPORT_STEP) if step in args.steps):
      results.append(run_step(SizeRun(args.work_dir, size), corpus_path, step))
      print(json.dumps(results[-1]), flush=True)
  result = {'date': datetime.datetime.now().isoformat(timespec='seconds'), 'machine': machine(),
            'sizes': sorted(args.sizes), 'trainer_steps': TRAINER_STEPS, 'corpus_mb': corpus_mb,
            'steps': results, 'fits': fits(results)}
  write_results(args.name, result, markdown(result))
  return 0


if __name__ == '__main__':
  sys.exit(main())
