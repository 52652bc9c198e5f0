// The `bettertls export-tests` of Netflix/bettertls's cmd/bettertls, reduced to the two suites
// and the standard library plus google/uuid (its test executor needs logrus and protobuf).
// Writes the same JSON that x509-limbo vendors as limbo/_assets/bettertls.json.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/Netflix/bettertls/test-suites/certutil"
	"github.com/Netflix/bettertls/test-suites/nameconstraints"
	"github.com/Netflix/bettertls/test-suites/pathbuilding"
	test_case "github.com/Netflix/bettertls/test-suites/test-case"
)

type testExport struct {
	BetterTlsRevision string                  `json:"betterTlsRevision"`
	TrustRoot         []byte                  `json:"trustRoot"`
	Suites            map[string]*suiteExport `json:"suites"`
}

type suiteExport struct {
	Features            []string          `json:"features"`
	SanityCheckTestCase uint              `json:"sanityCheckTestCase"`
	FeatureTestCases    map[string][]uint `json:"featureTestCases"`
	TestCases           []*testCaseExport `json:"testCases"`
}

type testCaseExport struct {
	Id               uint     `json:"id"`
	Suite            string   `json:"suite"`
	Certificates     [][]byte `json:"certificates"`
	Hostname         string   `json:"hostname"`
	RequiredFeatures []string `json:"requiredFeatures"`
	Expected         string   `json:"expected"`
	FailureIsWarning bool     `json:"failureIsWarning"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	rootCert, rootKey, err := certutil.GenerateSelfSignedCert("bettertls_trust_root")
	if err != nil {
		return err
	}
	providers := []test_case.TestCaseProvider{
		nameconstraints.NewTestCaseProvider(),
		pathbuilding.NewTestCaseProvider(),
	}
	output := &testExport{TrustRoot: rootCert.Raw, Suites: map[string]*suiteExport{}}
	if len(os.Args) > 1 {
		output.BetterTlsRevision = os.Args[1]
	}
	for _, provider := range providers {
		s := &suiteExport{Features: []string{}, FeatureTestCases: map[string][]uint{}}
		if s.SanityCheckTestCase, err = provider.GetSanityCheckTestCase(); err != nil {
			return err
		}
		for _, feature := range provider.GetFeatures() {
			name := provider.DescribeFeature(feature)
			s.Features = append(s.Features, name)
			cases, err := provider.GetTestCasesForFeature(feature)
			if err != nil {
				return err
			}
			s.FeatureTestCases[name] = cases
		}
		count, err := provider.GetTestCaseCount()
		if err != nil {
			return err
		}
		for i := uint(0); i < count; i++ {
			tc, err := provider.GetTestCase(i)
			if err != nil {
				return err
			}
			certs, err := tc.GetCertificates(rootCert, rootKey)
			if err != nil {
				return err
			}
			e := &testCaseExport{Id: i, Suite: provider.Name(), Certificates: certs.Certificate,
				Hostname: tc.GetHostname(), RequiredFeatures: []string{}}
			for _, f := range tc.RequiredFeatures() {
				e.RequiredFeatures = append(e.RequiredFeatures, provider.DescribeFeature(f))
			}
			switch tc.ExpectedResult() {
			case test_case.EXPECTED_RESULT_PASS:
				e.Expected = "ACCEPT"
			case test_case.EXPECTED_RESULT_FAIL:
				e.Expected = "REJECT"
			case test_case.EXPECTED_RESULT_SOFT_PASS:
				e.Expected, e.FailureIsWarning = "ACCEPT", true
			case test_case.EXPECTED_RESULT_SOFT_FAIL:
				e.Expected, e.FailureIsWarning = "REJECT", true
			default:
				return fmt.Errorf("unhandled expected result: %v", tc.ExpectedResult())
			}
			s.TestCases = append(s.TestCases, e)
		}
		output.Suites[provider.Name()] = s
	}
	return json.NewEncoder(os.Stdout).Encode(output)
}
