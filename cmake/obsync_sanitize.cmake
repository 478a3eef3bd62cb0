# -DOBSYNC_SANITIZE=address,undefined instruments every target.
if(OBSYNC_SANITIZE)
  add_compile_options(-fsanitize=${OBSYNC_SANITIZE} -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${OBSYNC_SANITIZE})
endif()
