import DBOS
import Testing

@Suite struct SystemDatabaseURLTests {
    @Test func passwordsInTheUserInformationAndTheQueryAreHidden() {
        #expect(SystemDatabaseURL.redacted("postgres://ada:s3cr@t/x@db:5432/app") == "postgres://ada:***@db:5432/app")
        #expect(SystemDatabaseURL.redacted("postgresql://db/app?sslmode=require&password=pw")
            == "postgresql://db/app?sslmode=require&password=***")
        #expect(SystemDatabaseURL.redacted("sqlite:.dbos/system.sqlite") == "sqlite:.dbos/system.sqlite")
        #expect(SystemDatabaseURL.password(in: "postgres://ada:s3cr@t/x@db/app") == "s3cr@t/x")
        #expect(SystemDatabaseURL.password(in: "postgres://db/app?password=pw&x=1") == "pw")
        #expect(SystemDatabaseURL.password(in: "postgres://ada@db/app") == nil)
    }
}
