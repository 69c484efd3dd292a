"""The pinned npm manifest (package.json, package-lock.json), shipped in the wheel as zkfl._npm."""
