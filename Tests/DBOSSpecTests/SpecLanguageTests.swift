import DBOSSpec
import Testing

@Suite struct SpecLanguageTests {
    @Test func languageVersionIsOne() {
        #expect(SpecLanguage.version == 1)
    }
}
