// A rule whose condition costs about 100 loop steps per byte of the
// sample: seconds for a megabyte. tests/e2e/scand_sandbox.sh uses it to
// keep a scan worker busy on one sample (as a hostile sample that makes
// libyara crawl would).
rule Vigil_Test_Loop
{
	condition:
		for all i in (0..filesize - 1) : (for all j in (0..99) : (uint8(i) + j < 400))
}
