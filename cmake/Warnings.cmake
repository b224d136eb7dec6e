# Warning flags for hakmem's own code.
set(HAK_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-aliasing=2
  -Werror=implicit-function-declaration -Werror=int-conversion)
