"""Makes TensorFlow unimportable in a child process that puts this folder on PYTHONPATH.

Python imports `sitecustomize` at start-up. The GPU machine has JAX and
PyTorch but no TensorFlow; this lets CI prove a script runs there. A found
spec whose loader fails, rather than an error from `find_spec`, so that
probes such as `importlib.util.find_spec("tensorflow")` (PyTorch's dynamo
makes them) see a package that fails to import, as a broken install would.
"""

import importlib.abc
import importlib.machinery
import sys

BLOCKED = ("tensorflow", "tensorflow_text", "tensorflow_datasets", "tensorflow_hub")


class _FailingLoader(importlib.abc.Loader):
    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {spec.name!r} (blocked)", name=spec.name)

    def exec_module(self, module):
        raise ModuleNotFoundError(f"No module named {module.__name__!r} (blocked)")


class _BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, _FailingLoader())
        return None


sys.meta_path.insert(0, _BlockTensorFlow())
