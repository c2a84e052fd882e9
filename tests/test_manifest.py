"""roberta_cli.data.manifest: which directories a data argument names (shards, colon lists)."""
import json

import pytest

from roberta_cli.data import manifest
from roberta_cli.errors import UserError


def _shard(root, k, count):
    path = root / manifest.shard_name(k)
    path.mkdir(parents=True)
    manifest.write(path, {"format": manifest.DATA_FORMAT, "shard": {"index": k, "count": count}})
    return str(path)


def test_data_paths(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "dict.txt").write_text("a 1\n")
    assert manifest.data_paths(plain) == [str(plain)]
    assert manifest.data_paths("a:b::c") == ["a", "b", "c"]  # fairseq's colon list, as given
    sharded = tmp_path / "sharded"
    shards = [_shard(sharded, k, 12) for k in range(12)]
    (sharded / ".shard3.partial-1-ab").mkdir()  # a job's staging directory: not a shard
    assert manifest.data_paths(sharded) == shards  # numeric order: shard10 after shard9
    assert json.loads((sharded / "shard0" / manifest.NAME).read_text())["shard"]["count"] == 12


@pytest.mark.parametrize("made,count,missing", [((0, 2), 3, 1), ((0, 1), 3, 2), ((1, 2), 3, 0)])
def test_a_missing_shard_is_named(tmp_path, made, count, missing):
    for k in made:
        _shard(tmp_path, k, count)
    with pytest.raises(UserError, match=rf"no shard{missing} of its 3 shards.*--shard-index "
                                        rf"{missing} --num-shards 3"):
        manifest.data_paths(tmp_path)
