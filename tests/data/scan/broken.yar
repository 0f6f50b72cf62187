rule Broken_Syntax
{
	strings:
		$a = "vigil"
	condition:
		$a and
}
