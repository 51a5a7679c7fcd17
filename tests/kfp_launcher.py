"""Runs a compiled KFP v2 pipeline spec here, as open-source Kubeflow Pipelines' backend does.

It stands in for a cluster, which cannot run here, and does what the backend's driver and
launcher (kubeflow/pipelines `backend/src/v2/driver`, `backend/src/v2/component`) do for each
task, in dependency order:
  * a container task runs its `command` + `args` in a subprocess of this environment (the image
    stands for it: `python` is this environment's), from a scratch folder, with `{{$}}` replaced
    by the ExecutorInput JSON. Its parameters are `parameterValues` only, from
    `runtimeValue.constant` (the only fields the open-source driver fills); its input
    artifacts are its producers' outputs as ML Metadata returns them (name: the artifact's id;
    metadata: what the producer's ExecutorOutput wrote); its outputs get URIs under
    PIPELINE_ROOT/PIPELINE/RUN/TASK/EXECUTION/KEY; `outputFile` is in a local task folder.
  * an importer task registers its URI as an artifact (the same one again unless `reimport`).
  * lifecycle hooks (`preCacheCheck`) are not run: the open-source backend never runs them.
  * a task with caching enabled whose cache key (its component and executor, its parameter
    values, its input artifacts' names, its outputs' types) matches an earlier success of the
    same `Backend` reuses that execution's outputs, as KFP's cache does.
Any other executor (a resolver, say) is refused before anything runs, as KFP's compiler refuses
it when a run is created ("non-container and non-importer executor not implemented").

Not covered: Argo and Kubernetes (pods, volumes, retries, parallel tasks), the object store
(URIs are local paths), ML Metadata itself, and the image (the project's environment runs each
task).
"""

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from typing import Any, Dict, List, Optional

_SUPPORTED_EXECUTORS = ('container', 'importer')
_EXECUTOR_INPUT_PLACEHOLDER = '{{$}}'


class UnsupportedSpecError(ValueError):
  """The spec holds something the open-source KFP backend cannot run."""


class TaskFailedError(RuntimeError):
  """A task's container exited with an error."""


@dataclasses.dataclass
class TaskResult:
  """What one task of a run did."""
  outputs: Dict[str, Dict[str, Any]]  # Output key → RuntimeArtifact as JSON.
  cached: bool
  log: str = ''  # The container's stdout and stderr.


@dataclasses.dataclass
class Backend:
  """What persists between runs of one KFP installation: artifact ids and the cache."""
  workdir: str
  last_id: int = 0
  cache: Dict[str, Dict[str, Dict[str, Any]]] = dataclasses.field(default_factory=dict)
  imported: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)  # URI → artifact.

  def new_id(self) -> int:
    self.last_id += 1
    return self.last_id


def check_executors(spec: Dict[str, Any]) -> None:
  """Raises UnsupportedSpecError naming each executor that is not a container or an importer."""
  unsupported = sorted(f'{label} ({", ".join(executor)})'
                       for label, executor in spec['deploymentSpec']['executors'].items()
                       if not set(executor) & set(_SUPPORTED_EXECUTORS))
  if unsupported:
    raise UnsupportedSpecError('non-container and non-importer executors not implemented: '
                               + ', '.join(unsupported))


def run_pipeline(spec: Dict[str, Any], backend: Backend, run_id: str) -> Dict[str, TaskResult]:
  """Runs every task of `spec` once, as run `run_id`; returns each task's result.

  Raises:
    UnsupportedSpecError: before any task runs, for an executor KFP cannot run.
    TaskFailedError: a task failed; the tasks after it do not run.
  """
  check_executors(spec)
  run_root = f"{spec['defaultPipelineRoot'].rstrip('/')}/{spec['pipelineInfo']['name']}/{run_id}"
  tasks = spec['root']['dag']['tasks']
  results: Dict[str, TaskResult] = {}
  for task_name in _dependency_order(tasks):
    task = tasks[task_name]
    component = spec['components'][task['componentRef']['name']]
    executor = spec['deploymentSpec']['executors'][component['executorLabel']]
    if 'importer' in executor:
      results[task_name] = _import(executor['importer'], component, backend)
      continue
    task_dir = os.path.join(backend.workdir, run_id, task_name)
    executor_input = _executor_input(task, component, results, f'{run_root}/{task_name}',
                                     task_dir, backend)
    cache_key = _cache_key(component, executor, executor_input)
    if task.get('cachingOptions', {}).get('enableCache') and cache_key in backend.cache:
      results[task_name] = TaskResult(backend.cache[cache_key], cached=True)
      continue
    results[task_name] = _run_container(executor['container'], executor_input, backend, task_dir)
    backend.cache[cache_key] = results[task_name].outputs
  return results


def _dependency_order(tasks: Dict[str, Dict[str, Any]]) -> List[str]:
  """Task names, each after the tasks it depends on (ties by name)."""
  ordered: List[str] = []
  while len(ordered) < len(tasks):
    ready = sorted(name for name, task in tasks.items() if name not in ordered
                   and set(task.get('dependentTasks', [])) <= set(ordered))
    if not ready:
      raise UnsupportedSpecError('the tasks depend on each other in a cycle')
    ordered.append(ready[0])
  return ordered


def _parameter_values(task: Dict[str, Any]) -> Dict[str, Any]:
  """The task's parameters as the open-source driver resolves them: `runtimeValue.constant`."""
  values = {}
  for name, parameter in task.get('inputs', {}).get('parameters', {}).items():
    if 'constant' not in parameter.get('runtimeValue', {}):
      raise UnsupportedSpecError(f'parameter {name!r} is not a runtimeValue.constant: {parameter}')
    values[name] = parameter['runtimeValue']['constant']
  return values


def _executor_input(task: Dict[str, Any], component: Dict[str, Any],
                    results: Dict[str, TaskResult], task_root: str, task_dir: str,
                    backend: Backend) -> Dict[str, Any]:
  """The ExecutorInput JSON that the driver hands the task's container.

  Args:
    task_root: Where the task's outputs go: PIPELINE_ROOT/PIPELINE/RUN/TASK.
    task_dir: The local folder of the task's output file.
  """
  artifacts = {}
  for name, source in task.get('inputs', {}).get('artifacts', {}).items():
    producer = source['taskOutputArtifact']
    artifacts[name] = {'artifacts': [
        results[producer['producerTask']].outputs[producer['outputArtifactKey']]]}
  execution_root = f'{task_root}/{backend.new_id()}'
  outputs = {
      key: {'artifacts': [{'name': key, 'uri': f'{execution_root}/{key}',
                           'type': output['artifactType'], 'metadata': {}}]}
      for key, output in component.get('outputDefinitions', {}).get('artifacts', {}).items()}
  return {'inputs': {'parameterValues': _parameter_values(task), 'artifacts': artifacts},
          'outputs': {'artifacts': outputs,
                      'outputFile': os.path.join(task_dir, 'output_metadata.json')}}


def _cache_key(component: Dict[str, Any], executor: Dict[str, Any],
               executor_input: Dict[str, Any]) -> str:
  """KFP's cache key: what the task runs and on what, but not where its outputs go."""
  inputs = executor_input['inputs']
  return hashlib.sha256(json.dumps({
      'component': component, 'container': executor['container'],
      'parameters': inputs['parameterValues'],
      'artifacts': {key: [artifact['name'] for artifact in value['artifacts']]
                    for key, value in inputs['artifacts'].items()},
      'outputs': {key: value['artifacts'][0]['type']
                  for key, value in executor_input['outputs']['artifacts'].items()},
  }, sort_keys=True).encode()).hexdigest()


def _run_container(container: Dict[str, Any], executor_input: Dict[str, Any], backend: Backend,
                   task_dir: str) -> TaskResult:
  """Runs the container's command in a subprocess; returns its outputs as ML Metadata holds them."""
  placeholder_json = json.dumps(executor_input)
  command = [part.replace(_EXECUTOR_INPUT_PLACEHOLDER, placeholder_json)
             for part in container['command'] + container.get('args', [])]
  leftover = [part for part in command if '{{$' in part]
  if leftover:
    raise UnsupportedSpecError(f'placeholders this stand-in does not resolve: {leftover}')
  os.makedirs(task_dir, exist_ok=True)
  environment = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep
                     + os.environ.get('PATH', ''))
  result = subprocess.run(command, cwd=task_dir, env=environment, capture_output=True, text=True,
                          timeout=900)
  log = result.stdout + result.stderr
  if result.returncode != 0:
    raise TaskFailedError(f'{command[:4]} exited with {result.returncode}:\n{log[-6000:]}')
  outputs = {key: value['artifacts'][0]
             for key, value in executor_input['outputs']['artifacts'].items()}
  written = _executor_output(executor_input['outputs']['outputFile'])
  for key, artifact in outputs.items():
    for update in written.get('artifacts', {}).get(key, {}).get('artifacts', [])[:1]:
      artifact['uri'] = update.get('uri') or artifact['uri']
      artifact['metadata'].update(update.get('metadata', {}))
    artifact['name'] = str(backend.new_id())  # Registered in ML Metadata.
  return TaskResult(outputs, cached=False, log=log)


def _executor_output(path: str) -> Dict[str, Any]:
  """The ExecutorOutput a container wrote, or {} (a container may write none)."""
  if not os.path.exists(path):
    return {}
  with open(path) as output_file:
    return json.load(output_file)


def _import(importer: Dict[str, Any], component: Dict[str, Any], backend: Backend) -> TaskResult:
  """Registers the importer's URI as its one output, reusing an earlier one unless `reimport`."""
  uri = importer['artifactUri'].get('constant')
  if uri is None:
    raise UnsupportedSpecError(f'importer URI is not a constant: {importer}')
  if importer.get('reimport') or uri not in backend.imported:
    backend.imported[uri] = {'name': str(backend.new_id()), 'uri': uri,
                             'type': importer['typeSchema'],
                             'metadata': dict(importer.get('metadata', {}))}
  output_key, = component['outputDefinitions']['artifacts']
  return TaskResult({output_key: backend.imported[uri]}, cached=False)


def load_spec(path: str) -> Dict[str, Any]:
  """A compiled `.yaml` KFP pipeline spec."""
  import yaml  # pylint: disable=import-outside-toplevel
  with open(path) as spec_file:
    return yaml.safe_load(spec_file)


def artifact_property(artifact: Dict[str, Any], key: str) -> Optional[Any]:
  """A property of an artifact as its metadata holds it, or None."""
  return artifact.get('metadata', {}).get(key)
