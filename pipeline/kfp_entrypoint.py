"""The container entrypoint of every Kubeflow Pipelines and Vertex AI task.

It runs TFX's own entrypoint (`kubeflow_v2_run_executor`), which was written against Vertex AI,
after adapting what open-source Kubeflow Pipelines hands a container. Each adaptation answers a
line of the backend (kubeflow/pipelines at 7b70c7b, paths under `backend/src/v2/`); on Vertex AI
each is a no-op:

The backend                                             The adaptation
------------------------------------------------------  --------------------------------------------
rebuilds each input artifact from ML Metadata with      its type is taken from the task's own inputs
`type.instanceSchema` empty                             spec, `--json_serialized_inputs_spec_args`
(`metadata/client.go:1144`, `:245-260`); TFX's
`_retrieve_class_path` fails on it
adds an output `executor-logs` of schemaTitle           TFX never sees it; the launcher itself
`system.Artifact` when `publish_logs` is on, the        writes the task's log into it
default, from 2.14 (`driver/driver.go:747-760`); TFX    (`component/launcher_v2.go:632-655`,
cannot import that class                                `:700-716`)
downloads every input artifact key by key before the    markers under every output are deleted once
container starts, where a zero-byte folder marker       the executor is done (`object_store.py`)
breaks the download
(`component/launcher_v2.go:927-1004`,
`objectstore/object_store.go:176-268`)
gives the pod a CPU limit that `os.cpu_count()`, and    Beam's worker count becomes the cgroup's CPU
so Beam's `--direct_num_workers=0`, does not see        limit
resolves `{{$.pipeline_job_uuid}}` in a constant        the parameter is removed before TFX reads
parameter (`driver/resolve.go:440`, 2.5 on), so a task  its exec properties
given RUN_ID_PARAMETER has a new cache key every run,
even under a run-level `enable_caching=True`
"""

import argparse
import json
import math
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pipeline import object_store

# A parameter of the tasks that must run every time; its value is the run's id.
RUN_ID_PARAMETER = 'kfp_run_id'
RUN_ID_PLACEHOLDER = '{{$.pipeline_job_uuid}}'
_BEAM_WORKERS_FLAG = '--direct_num_workers'
_CGROUP_V2_CPU = '/sys/fs/cgroup/cpu.max'
_CGROUP_V1_CPU = ('/sys/fs/cgroup/cpu/cpu.cfs_quota_us', '/sys/fs/cgroup/cpu/cpu.cfs_period_us')


def adapt_executor_input(executor_input: Dict[str, Any],
                         inputs_spec: Optional[Dict[str, Any]]) -> Dict[str, Any]:
  """The ExecutorInput as TFX's entrypoint can read it.

  Args:
    executor_input: What the backend put in place of `{{$}}`, as JSON.
    inputs_spec: The task's ComponentInputsSpec (`--json_serialized_inputs_spec_args`).

  Raises:
    ValueError: an input artifact with neither a type nor one in the inputs spec.
  """
  adapted = json.loads(json.dumps(executor_input))
  spec_artifacts = (inputs_spec or {}).get('artifacts', {})
  for name, artifact_list in adapted.get('inputs', {}).get('artifacts', {}).items():
    for artifact in artifact_list.get('artifacts', []):
      if any(artifact.get('type', {}).values()):
        continue
      if name not in spec_artifacts:
        raise ValueError(f'input artifact {name!r} has no type, and the inputs spec names none')
      artifact['type'] = spec_artifacts[name]['artifactType']
  outputs = adapted.get('outputs', {}).get('artifacts', {})
  for key in [key for key, value in outputs.items() if not _is_tfx_type(value)]:
    del outputs[key]
  adapted.get('inputs', {}).get('parameterValues', {}).pop(RUN_ID_PARAMETER, None)
  return adapted


def _is_tfx_type(artifact_list: Dict[str, Any]) -> bool:
  """Whether an output is a TFX artifact: its type names a TFX class, not a KFP `system.` one."""
  types = [artifact.get('type', {}) for artifact in artifact_list.get('artifacts', [])]
  return not any(kind.get('schemaTitle', '').startswith('system.') for kind in types)


def pod_cpu_limit() -> Optional[int]:
  """The container's CPU limit, rounded up, from its cgroup; None when it has none."""
  try:
    quota, period = _read(_CGROUP_V2_CPU).split()[:2]
  except OSError:
    try:
      quota, period = (_read(path).strip() for path in _CGROUP_V1_CPU)
    except OSError:
      return None
  if quota in ('max', '-1'):
    return None
  return max(1, math.ceil(int(quota) / int(period)))


def _read(path: str) -> str:
  with open(path) as cgroup_file:
    return cgroup_file.read()


def beam_args_for_pod(beam_args: Sequence[str], cpu_limit: Optional[int]) -> List[str]:
  """`beam_args` with `--direct_num_workers=0` (one per CPU the node has) set to `cpu_limit`."""
  if cpu_limit is None:
    return list(beam_args)
  return [f'{_BEAM_WORKERS_FLAG}={cpu_limit}' if arg == f'{_BEAM_WORKERS_FLAG}=0' else arg
          for arg in beam_args]


def _parse_args(argv: Sequence[str]) -> Tuple[argparse.Namespace, List[str]]:
  """TFX's entrypoint flags; the rest are Beam's."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
  parser.add_argument('--executor_class_path', required=True)
  parser.add_argument('--json_serialized_invocation_args', required=True)
  parser.add_argument('--json_serialized_inputs_spec_args')
  return parser.parse_known_args(list(argv))


def main(argv: Sequence[str]) -> int:
  """Adapts the task's input, runs TFX's executor, then removes its outputs' folder markers."""
  args, beam_args = _parse_args(argv)
  inputs_spec = (json.loads(args.json_serialized_inputs_spec_args)
                 if args.json_serialized_inputs_spec_args else None)
  executor_input = adapt_executor_input(json.loads(args.json_serialized_invocation_args),
                                        inputs_spec)
  args.json_serialized_invocation_args = json.dumps(executor_input)
  # pylint: disable=import-outside-toplevel  # TFX and TensorFlow load after the args are read.
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
  kubeflow_v2_run_executor.main((args, beam_args_for_pod(beam_args, pod_cpu_limit())))
  for artifact_list in executor_input['outputs']['artifacts'].values():
    for artifact in artifact_list['artifacts']:
      object_store.remove_folder_markers(artifact['uri'],
                                         object_store.bucket_for(artifact['uri']))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
