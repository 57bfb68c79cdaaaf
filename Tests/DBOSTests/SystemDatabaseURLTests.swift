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

    @Test func aPasswordIsMaskedWhereItStandsAsAValueNotInsideAHostOrPort() {
        let refused = "cannot connect to PostgreSQL at 127.0.0.1:5431: connection to server at \"127.0.0.1\", port 5431 failed"
        #expect(SystemDatabaseURL.masking("1", in: refused) == refused, "a one-character password is part of the host")
        #expect(SystemDatabaseURL.masking("p", in: "cannot open system database postgres://u@h/db") == "cannot open system database postgres://u@h/db")
        #expect(SystemDatabaseURL.masking("postgres", in: "postgres://postgres:postgres@127.0.0.1:1/x")
            == "postgres://postgres:***@127.0.0.1:1/x")
        #expect(SystemDatabaseURL.masking("dbos", in: "database dbos at postgres://u:dbos@h/dbos")
            == "database *** at postgres://u:***@h/dbos", "a word of its own is masked, the database in the URL's path is not")
        #expect(SystemDatabaseURL.masking("s3cr@t", in: "host=h password=s3cr@t user=u") == "host=h password=*** user=u")
        #expect(SystemDatabaseURL.masking("pw", in: "invalid option \"pw\"") == "invalid option \"***\"")
        #expect(SystemDatabaseURL.masking("pw", in: "pw") == "***")
        #expect(SystemDatabaseURL.masking("b:b", in: "postgres://ab:b:b@h/db") == "postgres://ab:***@h/db",
            "an occurrence inside the user overlaps the real one")
        #expect(SystemDatabaseURL.masking(nil, in: "x") == "x")
    }
}
