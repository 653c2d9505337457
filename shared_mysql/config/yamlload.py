"""The YAML loader for configs: libyaml when present, duplicate keys and YAML 1.1's surprising numbers refused.

Its own module so that a command whose config is served from the parsed cache never imports PyYAML (~10 ms)."""

from __future__ import annotations

import re

import yaml


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: object, line: int):
        super().__init__(f"duplicate key {key!r}")
        self.key, self.line = key, line


class NoDuplicateKeys:
    """Loader mixin: a duplicate key is an error (YAML says so; PyYAML would let the last one silently win)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` and then overriding one of its keys is what merge keys are for
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        raise DuplicateKeyError(key, key_node.start_mark.line + 1)
                    seen.add(key)
                except TypeError:
                    pass  # an unhashable key: the base constructor reports it
        return super().construct_mapping(node, deep=deep)


# libyaml's parser when PyYAML was built with it (the pure-Python parser dominates load time at 10,000 tenants);
# the constructor, and so the duplicate check, is Python either way.
class ConfigLoader(NoDuplicateKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML 1.1 reads `0764` as octal (500), `1:20` as base 60 (80) and `1_000` as 1000: nobody writing a
    connection limit or a port means that, so such numbers are errors rather than silent surprises."""

    _AMBIGUOUS = re.compile(r"[-+]?(0[0-7]+|0b[01_]+|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?|[0-9.]*_[0-9_.]*)")

    def _plain_number(self, node, construct):
        value = self.construct_scalar(node)
        if self._AMBIGUOUS.fullmatch(value):
            raise yaml.constructor.ConstructorError(
                None, None, f"{value!r} is a YAML 1.1 octal, binary, base-60 or underscored number; write it as "
                "plain decimal digits (or quote it if it is text)", node.start_mark)
        return construct(self, node)

    def construct_yaml_int(self, node):
        return self._plain_number(node, yaml.constructor.SafeConstructor.construct_yaml_int)

    def construct_yaml_float(self, node):
        return self._plain_number(node, yaml.constructor.SafeConstructor.construct_yaml_float)


ConfigLoader.add_constructor("tag:yaml.org,2002:int", ConfigLoader.construct_yaml_int)
ConfigLoader.add_constructor("tag:yaml.org,2002:float", ConfigLoader.construct_yaml_float)
