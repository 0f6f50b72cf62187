// A rule whose condition costs about 1,000 loop steps per byte of the
// sample: tens of seconds for a megabyte, past the tests' scan_timeout
// even on an idle machine (100 steps finished 2 MB within 6 s there).
// tests/e2e/scand_sandbox.sh uses it to keep a scan worker busy on one
// sample (as a hostile sample that makes libyara crawl would).
rule Vigil_Test_Loop
{
	condition:
		for all i in (0..filesize - 1) : (for all j in (0..999) : (uint8(i) + j < 4000))
}
