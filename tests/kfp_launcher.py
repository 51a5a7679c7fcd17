"""Runs a compiled KFP v2 pipeline spec here, as open-source Kubeflow Pipelines' backend does.

It stands in for a cluster, which cannot run here. Each behaviour below is the backend's, read
in kubeflow/pipelines at 7b70c7b (2026-08; paths under `backend/src/v2/` unless they start with
`sdk/`), and the tests show the stand-in refusing or failing where the backend does:

Behaviour                                               kubeflow/pipelines source
------------------------------------------------------  --------------------------------------------
The spec is parsed as protobuf JSON, so an unknown      `sdk/python/kfp/client/client.py`
field is refused; a second YAML document is the         `_extract_pipeline_yaml` (kfp 2.5.0 as
platform spec (kfp-kubernetes)                          pinned)
A run-level `enable_caching` rewrites every task's      `sdk/python/kfp/client/client.py`
`cachingOptions` before submitting                      `_override_caching_options`
The run's root is the run request's `pipeline_root`,    `driver/root_dag.go:97-113`,
else the `kfp-launcher` ConfigMap's, else               `config/env.go:38,86-91`,
`minio://mlpipeline/v2/artifacts`; the spec's           `apiserver/template/template.go:187`
`defaultPipelineRoot` is never read
Outputs go to ROOT/PIPELINE/RUN/TASK/UUID/KEY           `metadata/client.go:420` (`GetPipeline`),
                                                        `driver/driver.go:765-781`
                                                        (`provisionOutputs`)
Every container task gets an extra output `executor-    `driver/driver.go:747-760`,
logs` (schemaTitle `system.Artifact`) while             `cmd/driver/main.go:101`
`publish_logs` is on, its default, since KFP 2.14
The executor output file is under the task root's       `driver/driver.go:792-799`,
local path (`/gcs/...`), else                           `component/launcher_v2.go:526`
`/tmp/kfp_outputs/output_metadata.json`
Parameters are `runtimeValue.constant`s; job and task   `driver/resolve.go:422-451`
placeholders in them are resolved (backend 2.5 and
later)
An input artifact is rebuilt from ML Metadata: name =   `metadata/client.go:1144` ("TODO figure out
its id, its metadata from custom properties, and        how to get schema"),
`type.instanceSchema` empty                             `metadata/client.go:245-260`
                                                        (`ToRuntimeArtifact`),
                                                        `metadata/converter.go:181-221`
Metadata goes through ML Metadata: numbers come back    `metadata/converter.go:110-171`,
as doubles, booleans as 0/1, lists and structs wrapped  `metadata/client.go:1234-1250`
in `{"list": ...}`/`{"struct": ...}`, `display_name`
and `store_session_info` added
Before the container starts, every input artifact is    `component/launcher_v2.go:927-1004`
downloaded to its local path: keys listed flat under    (`downloadArtifacts`), `:1239-1253`
the URI, each written as a file (a zero-byte `NAME/`    (`LocalPathForURI`),
folder marker becomes a file, and the next key under    `objectstore/object_store.go:146-205`
it fails "not a directory"); a URI with no known        (`sanitizeDownloadPath`, `DownloadBlob`),
scheme is skipped                                       `:235-268` (`downloadFile`)
The container gets the pod's environment: no object-    `component/launcher_v2.go:668-689`,
store credentials (the launcher opens buckets with its  `driver/k8s.go:349-385`
own and sets only CA-bundle variables); kfp-kubernetes
`secretAsEnv` entries become variables
`{{$}}` becomes the ExecutorInput as protobuf JSON      `component/launcher_v2.go:1051-1074`
                                                        (`compileCmdAndArgs`)
The container's stdout and stderr are copied into       `component/launcher_v2.go:632-655`
`executor-logs` when it maps to a local path            (`getLogWriter`), `:700-716`
After success, each output takes the uri and metadata   `component/launcher_v2.go:778-856`
that the ExecutorOutput gives it, is uploaded from its  (`uploadOutputArtifacts`), `:1188-1206`
local path if that exists, and is recorded; after a     (`mergeRuntimeArtifacts`)
failure only `executor-logs` is
Lifecycle hooks (`preCacheCheck`) never run             no caller in `backend/src/v2`
Cache key: input artifact names, parameter values,      `cacheutils/cache.go:173-232`
output names, types and metadata, command and args,     (`GenerateCacheKey`),
image; used when `cachingOptions.enableCache` and the   `driver/cache.go:87-140`
cache is on
Importers register their URI once per pipeline unless   `component/importer_launcher.go:168-186`
`reimport`
Executors other than container and importer are         `compiler/visitor.go:134` ("non-container
refused                                                 and non-importer executor not implemented")

Deviations, for a machine without Kubernetes: each task runs its `command` + `args` in a
subprocess of this environment (the image stands for it), and a pod's own local paths (the
executor output file, the download folder) are under a task folder of `Backend.workdir`.
Object stores are `ObjectStore`s given per URL scheme; a URI of a scheme with none is skipped
by the download as the launcher skips one it cannot map. Not covered: Argo and Kubernetes
(scheduling, volumes, retries, parallel tasks), ML Metadata's server, the UI.
"""

import dataclasses
import errno
import hashlib
import json
import os
import subprocess
import sys
from typing import Any, Dict, Iterable, List, Optional, Protocol, Tuple

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

DEFAULT_PIPELINE_ROOT = 'minio://mlpipeline/v2/artifacts'  # config/env.go:38
EXECUTOR_LOGS = 'executor-logs'  # driver/driver.go:754
_LEGACY_OUTPUT_FILE = 'tmp/kfp_outputs/output_metadata.json'  # launcher_v2.go:526, in the pod.
_LOCAL_PREFIXES = {'gs://': 'gcs', 'minio://': 'minio', 's3://': 's3'}  # launcher_v2.go:1239
_SUPPORTED_EXECUTORS = ('container', 'importer')
_EXECUTOR_INPUT_PLACEHOLDER = '{{$}}'


class UnsupportedSpecError(ValueError):
  """The spec holds something the open-source KFP backend cannot run."""


class TaskFailedError(RuntimeError):
  """A task failed: its download, its container, or its outputs."""


class ObjectStore(Protocol):
  """A bucket as gocloud's `blob.Bucket` sees it: flat keys, folders are only prefixes."""

  def list(self, prefix: str) -> Iterable[Tuple[str, int]]:
    """(key, size) of every object whose key starts with `prefix`, in key order."""

  def read(self, key: str) -> bytes:
    """The object's bytes."""

  def write(self, key: str, data: bytes) -> None:
    """Puts an object."""


@dataclasses.dataclass
class TaskResult:
  """What one task of a run did."""
  outputs: Dict[str, Dict[str, Any]]  # Output key → RuntimeArtifact, as a consumer receives it.
  cached: bool
  log: str = ''  # The container's stdout and stderr.
  executor_input: Optional[Dict[str, Any]] = None


@dataclasses.dataclass
class Backend:
  """One KFP installation: its settings, its ML Metadata, its cache and its object stores.

  Attributes:
    workdir: Where the pods' local files go.
    publish_logs: The driver's `--publish_logs` (default true); the `executor-logs` output exists
      from KFP 2.14 on, so False stands for 2.0 to 2.13.
    resolves_placeholders: Whether constant parameters' job placeholders are resolved (2.5 on).
    cache_disabled: The API server's cache switch (`CacheEnabled=false`).
    stores: Object stores by scheme ('gs', 's3', 'minio').
    secrets: Kubernetes secrets of the run's namespace: name → key → value.
  """
  workdir: str
  publish_logs: bool = True
  resolves_placeholders: bool = True
  cache_disabled: bool = False
  stores: Dict[str, ObjectStore] = dataclasses.field(default_factory=dict)
  secrets: Dict[str, Dict[str, str]] = dataclasses.field(default_factory=dict)
  last_id: int = 0
  artifacts: Dict[int, Dict[str, Any]] = dataclasses.field(default_factory=dict)  # ML Metadata.
  cache: Dict[str, Dict[str, int]] = dataclasses.field(default_factory=dict)  # Key → output ids.
  imported: Dict[str, int] = dataclasses.field(default_factory=dict)  # URI → artifact id.

  def new_id(self) -> int:
    self.last_id += 1
    return self.last_id

  def record(self, name: str, schema: str, runtime_artifact: Dict[str, Any], root: str) -> int:
    """Stores an artifact in ML Metadata as `RecordArtifact` does; returns its id."""
    properties = {key: _to_mlmd_value(value)
                  for key, value in runtime_artifact.get('metadata', {}).items()
                  if key != '_kfp_workspace'}  # converter.go:122
    properties.setdefault('display_name', ('string', name))  # client.go:1234
    properties.setdefault('store_session_info',  # client.go:1242
                          ('string', json.dumps({'Provider': _scheme(root) or 'unknown'})))
    artifact_id = self.new_id()
    self.artifacts[artifact_id] = {'uri': runtime_artifact['uri'], 'schema': schema,
                                   'properties': properties}
    return artifact_id

  def runtime_artifact(self, artifact_id: int) -> Dict[str, Any]:
    """An artifact as the driver hands it to a consumer (`ToRuntimeArtifact`)."""
    artifact = self.artifacts[artifact_id]
    return {'name': str(artifact_id), 'uri': artifact['uri'], 'type': {'instanceSchema': ''},
            'metadata': {key: _from_mlmd_value(value)
                         for key, value in artifact['properties'].items()}}


def _to_mlmd_value(value: Any) -> Tuple[str, Any]:
  """`StructValueToMLMDValue` (converter.go:138-171)."""
  if isinstance(value, bool):
    return ('int', int(value))
  if isinstance(value, str):
    return ('string', value)
  if isinstance(value, (int, float)):
    return ('double', float(value))
  if isinstance(value, list):
    return ('struct', {'list': value})
  if isinstance(value, dict):
    return ('struct', {'struct': value})
  raise UnsupportedSpecError(f'unknown/unsupported value type {type(value).__name__}')


def _from_mlmd_value(value: Tuple[str, Any]) -> Any:
  """`toRuntimeArtifact`'s conversion (converter.go:194-212): every number is a double."""
  kind, content = value
  return float(content) if kind in ('int', 'double') else content


def load_spec(path: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
  """The pipeline spec and platform spec of a compiled `.yaml`, checked as kfp.Client checks them.

  Raises:
    UnsupportedSpecError: a field that the PipelineSpec or PlatformSpec protos do not have.
  """
  with open(path) as spec_file:
    documents = [document for document in yaml.safe_load_all(spec_file) if document]
  pipeline_spec, platform_spec = documents[0], {}
  for document in documents[1:]:
    platform_spec.update(document)
  try:
    json_format.ParseDict(pipeline_spec, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(platform_spec, pipeline_spec_pb2.PlatformSpec())
  except json_format.ParseError as error:
    raise UnsupportedSpecError(str(error)) from error
  return pipeline_spec, platform_spec


def check_executors(spec: Dict[str, Any]) -> None:
  """Raises UnsupportedSpecError naming each executor that is not a container or an importer."""
  unsupported = sorted(f'{label} ({", ".join(executor)})'
                       for label, executor in spec['deploymentSpec']['executors'].items()
                       if not set(executor) & set(_SUPPORTED_EXECUTORS))
  if unsupported:
    raise UnsupportedSpecError('non-container and non-importer executors not implemented: '
                               + ', '.join(unsupported))


def run_pipeline(spec: Dict[str, Any], backend: Backend, run_id: str,
                 pipeline_root: Optional[str] = None, enable_caching: Optional[bool] = None,
                 platform_spec: Optional[Dict[str, Any]] = None) -> Dict[str, TaskResult]:
  """Runs every task of `spec` once, as run `run_id`; returns each task's result.

  Args:
    pipeline_root: The run request's `runtime_config.pipeline_root`; None sends none.
    enable_caching: The client's run-level override of every task's caching; None: the spec's.
    platform_spec: The spec file's kfp-kubernetes platform spec.

  Raises:
    UnsupportedSpecError: before any task runs, for an executor KFP cannot run.
    TaskFailedError: a task failed; the tasks after it do not run.
  """
  check_executors(spec)
  root = pipeline_root or DEFAULT_PIPELINE_ROOT
  run_root = f"{root.rstrip('/')}/{spec['pipelineInfo']['name']}/{run_id}"
  tasks = spec['root']['dag']['tasks']
  kubernetes = (platform_spec or {}).get('platforms', {}).get('kubernetes', {})
  results: Dict[str, TaskResult] = {}
  output_ids: Dict[str, Dict[str, int]] = {}
  for task_name in _dependency_order(tasks):
    task = tasks[task_name]
    component = spec['components'][task['componentRef']['name']]
    label = component['executorLabel']
    executor = spec['deploymentSpec']['executors'][label]
    if 'importer' in executor:
      output_ids[task_name] = _import(executor['importer'], component, backend, root)
    else:
      caching = task.get('cachingOptions', {}).get('enableCache', False)
      if enable_caching is not None:
        caching = enable_caching
      output_ids[task_name], results[task_name] = _run_task(
          task_name, task, component, executor['container'], output_ids, backend, run_id,
          run_root, root, caching and not backend.cache_disabled,
          kubernetes.get('deploymentSpec', {}).get('executors', {}).get(label, {}))
    outputs = {key: backend.runtime_artifact(artifact_id)
               for key, artifact_id in output_ids[task_name].items()}
    if task_name in results:
      results[task_name].outputs = outputs
    else:
      results[task_name] = TaskResult(outputs, cached=False)
  return results


def _run_task(task_name, task, component, container, output_ids, backend, run_id, run_root,
              root, caching, kubernetes_config) -> Tuple[Dict[str, int], TaskResult]:
  """One container task: driver (inputs, outputs, cache), then launcher (download, run, record)."""
  pod_dir = os.path.join(backend.workdir, run_id, task_name)
  executor_input = _executor_input(task, component, output_ids, backend, run_id, run_root,
                                   task_name, pod_dir)
  cache_key = _cache_key(container, executor_input)
  if caching and cache_key in backend.cache:
    return backend.cache[cache_key], TaskResult({}, cached=True, executor_input=executor_input)
  _download_inputs(executor_input, backend, pod_dir)
  environment = _pod_environment(kubernetes_config, backend, task_name)
  log, succeeded = _run_container(container, executor_input, environment, pod_dir)
  outputs = _record_outputs(executor_input, backend, root, succeeded, log, pod_dir)
  if not succeeded:
    raise TaskFailedError(f'{task_name} failed:\n{log[-6000:]}')
  if caching:
    backend.cache[cache_key] = outputs
  return outputs, TaskResult({}, cached=False, log=log, executor_input=executor_input)


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


def _parameter_values(task: Dict[str, Any], backend: Backend, run_id: str,
                      task_name: str) -> Dict[str, Any]:
  """The task's parameters as the driver resolves them (resolve.go:422-451)."""
  placeholders = {'{{$.pipeline_job_uuid}}': run_id, '{{$.pipeline_job_name}}': run_id,
                  '{{$.pipeline_task_name}}': task_name}
  values = {}
  for name, parameter in task.get('inputs', {}).get('parameters', {}).items():
    if 'constant' not in parameter.get('runtimeValue', {}):
      raise UnsupportedSpecError(f'parameter {name!r} is not a runtimeValue.constant: {parameter}')
    value = parameter['runtimeValue']['constant']
    if backend.resolves_placeholders and isinstance(value, str):
      value = placeholders.get(value, value)
    values[name] = value
  return values


def _executor_input(task, component, output_ids, backend, run_id, run_root, task_name,
                    pod_dir) -> Dict[str, Any]:
  """The ExecutorInput that the driver hands the task's container."""
  artifacts = {}
  for name, source in task.get('inputs', {}).get('artifacts', {}).items():
    producer = source['taskOutputArtifact']
    artifacts[name] = {'artifacts': [backend.runtime_artifact(
        output_ids[producer['producerTask']][producer['outputArtifactKey']])]}
  task_root = f'{run_root}/{task_name}/{backend.new_id()}'  # The driver's salt is a UUID.
  definitions = dict(component.get('outputDefinitions', {}).get('artifacts', {}))
  if backend.publish_logs:
    definitions[EXECUTOR_LOGS] = {'artifactType': {'schemaTitle': 'system.Artifact'}}
  outputs = {key: {'artifacts': [{'name': key, 'uri': f'{task_root}/{key}',
                                  'type': output['artifactType'],
                                  'metadata': output.get('metadata', {})}]}
             for key, output in definitions.items()}
  local_root = _local_path(task_root, pod_dir)
  output_file = (os.path.join(local_root, 'output_metadata.json') if local_root
                 else os.path.join(pod_dir, _LEGACY_OUTPUT_FILE))
  return {'inputs': {'parameterValues': _parameter_values(task, backend, run_id, task_name),
                     'artifacts': artifacts},
          'outputs': {'artifacts': outputs, 'outputFile': output_file}}


def _scheme(uri: str) -> Optional[str]:
  return next((local for prefix, local in _LOCAL_PREFIXES.items() if uri.startswith(prefix)), None)


def _local_path(uri: str, pod_dir: str) -> Optional[str]:
  """`LocalPathForURI`, inside the pod's folder; None for a URI of no known scheme."""
  for prefix, local in _LOCAL_PREFIXES.items():
    if uri.startswith(prefix):
      return os.path.join(pod_dir, local, uri[len(prefix):])
  return None


def _bucket_and_key(uri: str) -> Tuple[str, str]:
  scheme, rest = uri.split('://', 1)
  bucket, _, key = rest.partition('/')
  return f'{scheme}://{bucket}', key


def _download_inputs(executor_input: Dict[str, Any], backend: Backend, pod_dir: str) -> None:
  """`downloadArtifacts`: every input artifact into its local path, key by key.

  Raises:
    TaskFailedError: in the launcher's words, as the task then fails before its container runs.
  """
  for name, artifact_list in executor_input['inputs']['artifacts'].items():
    for artifact in artifact_list['artifacts']:
      local_dir = _local_path(artifact['uri'], pod_dir)
      if local_dir is None:
        continue  # "does not have a recognized storage URI ... Skipping downloading"
      store = backend.stores[_scheme(artifact['uri'])]
      _, blob_dir = _bucket_and_key(artifact['uri'])
      try:
        _download_blob(store, local_dir, blob_dir)
      except OSError as error:
        raise TaskFailedError(f'failed to download input artifact {name!r} from remote storage '
                              f'URI {artifact["uri"]!r}: {error}') from error


def _download_blob(store: ObjectStore, local_dir: str, blob_dir: str) -> None:
  """`DownloadBlob` with `sanitizeDownloadPath` and `downloadFile` (object_store.go:146-268)."""
  for key, _ in store.list(blob_dir):
    if not (key == blob_dir.rstrip('/') or key.startswith(blob_dir.rstrip('/') + '/')):
      continue
    # filepath.Rel and filepath.Join clean a trailing '/': a marker `dir/` becomes the file `dir`.
    local_path = os.path.normpath(os.path.join(local_dir, os.path.relpath(key, blob_dir)))
    _mkdir_all(os.path.dirname(local_path))
    with open(local_path, 'wb') as local_file:  # os.Create
      local_file.write(store.read(key))


def _mkdir_all(path: str) -> None:
  """Go's `os.MkdirAll`: a file in the way is ENOTDIR, "not a directory"."""
  for depth in range(1, len(path.split(os.sep)) + 1):
    ancestor = os.sep.join(path.split(os.sep)[:depth]) or os.sep
    if os.path.exists(ancestor) and not os.path.isdir(ancestor):
      raise NotADirectoryError(errno.ENOTDIR, 'not a directory', path)
  os.makedirs(path, exist_ok=True)


def _pod_environment(kubernetes_config: Dict[str, Any], backend: Backend,
                     task_name: str) -> Dict[str, str]:
  """The container's environment: this machine's, plus the secrets that `secretAsEnv` names.

  Raises:
    TaskFailedError: a secret or key that the namespace lacks (the pod cannot start).
  """
  environment = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep
                     + os.environ.get('PATH', ''))
  for secret in kubernetes_config.get('secretAsEnv', []):
    values = backend.secrets.get(secret['secretName'])
    for key_to_env in secret.get('keyToEnv', []):
      if values is None or key_to_env['secretKey'] not in values:
        raise TaskFailedError(f'{task_name}: CreateContainerConfigError: secret '
                              f'"{secret["secretName"]}" has no key "{key_to_env["secretKey"]}"')
      environment[key_to_env['envVar']] = values[key_to_env['secretKey']]
  return environment


def _cache_key(container: Dict[str, Any], executor_input: Dict[str, Any]) -> str:
  """`GenerateCacheKey` + `GenerateFingerPrint` (cacheutils/cache.go:151-232)."""
  inputs, outputs = executor_input['inputs'], executor_input['outputs']['artifacts']
  return hashlib.sha256(json.dumps({
      'inputArtifactNames': {key: [artifact['name'] for artifact in value['artifacts']]
                             for key, value in inputs['artifacts'].items()},
      'inputParameterValues': inputs['parameterValues'],
      'outputArtifactsSpec': {key: {'name': value['artifacts'][0]['name'],
                                    'type': value['artifacts'][0]['type'],
                                    'metadata': value['artifacts'][0]['metadata']}
                              for key, value in outputs.items()},
      'containerSpec': {'image': container['image'],
                        'cmdArgs': container['command'] + container.get('args', [])},
  }, sort_keys=True).encode()).hexdigest()


def _run_container(container: Dict[str, Any], executor_input: Dict[str, Any],
                   environment: Dict[str, str], pod_dir: str) -> Tuple[str, bool]:
  """Runs the container's command; returns its log and whether it exited 0."""
  placeholder_json = json.dumps(executor_input)
  command = [part.replace(_EXECUTOR_INPUT_PLACEHOLDER, placeholder_json)
             for part in container['command'] + container.get('args', [])]
  leftover = [part for part in command if '{{$' in part]
  if leftover:
    raise UnsupportedSpecError(f'placeholders this stand-in does not resolve: {leftover}')
  os.makedirs(os.path.dirname(executor_input['outputs']['outputFile']), exist_ok=True)
  result = subprocess.run(command, cwd=pod_dir, env=environment, capture_output=True, text=True,
                          timeout=900, check=False)
  return result.stdout + result.stderr, result.returncode == 0


def _record_outputs(executor_input: Dict[str, Any], backend: Backend, root: str, succeeded: bool,
                    log: str, pod_dir: str) -> Dict[str, int]:
  """`uploadOutputArtifacts`: merges the ExecutorOutput, uploads local files, records each."""
  artifacts = executor_input['outputs']['artifacts']
  if not succeeded:
    artifacts = {key: value for key, value in artifacts.items() if key == EXECUTOR_LOGS}
  written = _executor_output(executor_input['outputs']['outputFile']) if succeeded else {}
  recorded = {}
  for key, value in artifacts.items():
    artifact = json.loads(json.dumps(value['artifacts'][0]))
    if key != EXECUTOR_LOGS:
      for update in written.get('artifacts', {}).get(key, {}).get('artifacts', [])[:1]:
        artifact['uri'] = update.get('uri') or artifact['uri']
        artifact['metadata'] = {**artifact.get('metadata', {}), **update.get('metadata', {})}
    local_path = _local_path(artifact['uri'], pod_dir)
    if key == EXECUTOR_LOGS:
      if local_path is None:
        continue  # No log file could be made: not recorded (launcher_v2.go:812-817).
      backend.stores[_scheme(artifact['uri'])].write(_bucket_and_key(artifact['uri'])[1],
                                                     log.encode())
    schema = artifact['type'].get('instanceSchema') or f"title: {artifact['type'].get('schemaTitle')}"
    recorded[key] = backend.record(key, schema, artifact, root)
  return recorded


def _executor_output(path: str) -> Dict[str, Any]:
  """The ExecutorOutput a container wrote, or {} (a container may write none)."""
  if not os.path.exists(path):
    return {}
  with open(path) as output_file:
    return json.load(output_file)


def _import(importer: Dict[str, Any], component: Dict[str, Any], backend: Backend,
            root: str) -> Dict[str, int]:
  """Registers the importer's URI as its one output, reusing an earlier one unless `reimport`."""
  uri = importer['artifactUri'].get('constant')
  if uri is None:
    raise UnsupportedSpecError(f'importer URI is not a constant: {importer}')
  output_key, = component['outputDefinitions']['artifacts']
  if importer.get('reimport') or uri not in backend.imported:
    schema = importer['typeSchema'].get('instanceSchema', '')
    backend.imported[uri] = backend.record(
        output_key, schema, {'uri': uri, 'metadata': dict(importer.get('metadata', {}))}, root)
  return {output_key: backend.imported[uri]}


def artifact_property(artifact: Dict[str, Any], key: str) -> Optional[Any]:
  """A property of an artifact as its metadata holds it, or None."""
  return artifact.get('metadata', {}).get(key)
