print("portal: under construction")
