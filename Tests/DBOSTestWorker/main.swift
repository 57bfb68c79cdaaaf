import DBOS

print("dbos-test-worker \(DBOSVersion.current)")
